"""Where each public data set lives: URLs, published checksums, licence terms, per-set options.

Every URL here is the real upstream address. ``--mirror`` (or ``$MMREC_PREPARE_MIRROR``) fetches
``<mirror>/<host>/<path>?<query>`` instead, which lets tests point every source at a local server and lets
users behind a proxy use a mirror with the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RemoteFile:
    """One upstream file; ``md5``/``sha256`` are filled only where the source publishes them."""

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None
    checksum_source: str | None = None


@dataclass(frozen=True)
class Source:
    """A data provider: what it is, under which terms it may be used, how to cite it."""

    key: str
    title: str
    homepage: str
    licence: str
    citation: str


@dataclass(frozen=True)
class DatasetSpec:
    """One preparable data set: ``kind`` selects the preparer, ``layout`` the folder format it writes."""

    name: str
    kind: str  # movielens | amazon2014 | amazon2023 | mmrec
    layout: str  # raw | mmrec
    source: str
    description: str
    files: dict[str, RemoteFile] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


GROUPLENS_LICENCE = (
    "MovieLens data sets (GroupLens Research, University of Minnesota). Summary of the usage licence: the"
    " data may be used for research purposes only; it may not be redistributed without separate "
    "permission; no endorsement by the University of Minnesota or GroupLens may be stated or implied; "
    "publications using it must cite F. M. Harper and J. A. Konstan, 'The MovieLens Datasets: History and"
    " Context', ACM TiiS 5(4), 2015; it is provided as is, without warranty. Full terms: the README "
    "inside each archive and https://grouplens.org/datasets/movielens/"
)
AMAZON2014_LICENCE = (
    "Amazon product data (2014), J. McAuley et al., UCSD. Provided by its authors for research purposes; "
    "the reviews and metadata remain subject to Amazon's terms; do not redistribute. Cite R. He and J. "
    "McAuley, 'Ups and downs', WWW 2016, and J. McAuley et al., 'Image-based recommendations on styles "
    "and substitutes', SIGIR 2015. Terms and contact: https://jmcauley.ucsd.edu/data/amazon/"
)
AMAZON2023_LICENCE = (
    "Amazon Reviews 2023, McAuley Lab, UCSD. Released for research use; the reviews, metadata and image "
    "links remain subject to Amazon's terms; product images are Amazon's and are fetched from Amazon's "
    "servers. Cite Y. Hou et al., 'Bridging Language and Items for Retrieval and Recommendation', arXiv "
    "2403.03952 (2024). Terms: https://amazon-reviews-2023.github.io/"
)
MMREC_LICENCE = (
    "MMRec's processed Amazon sets (Baby, Sports, Clothing, Elec): 5-core interaction files with MMRec's "
    "split and pre-extracted text (Sentence-Transformers) and image (CNN) features, shared by the MMRec "
    "authors (X. Zhou, https://github.com/enoche/MMRec). Derived from the Amazon product data (2014) of "
    "McAuley et al. and subject to its research-only terms (https://jmcauley.ucsd.edu/data/amazon/); do "
    "not redistribute. Cite X. Zhou, 'MMRec: Simplifying Multimodal Recommendation', MMAsia Workshops "
    "2023, and the Amazon data papers."
)
MICROLENS_LICENCE = (
    "MicroLens (Westlake University, https://github.com/westlake-repl/MicroLens), in the MMRec layout as "
    "linked from MMRec's data README. Research use under the MicroLens terms; do not redistribute. Cite "
    "Y. Ni et al., 'A Content-Driven Micro-Video Recommendation Dataset at Scale', arXiv 2309.15379 "
    "(2023)."
)

SOURCES: dict[str, Source] = {
    "grouplens": Source(
        "grouplens",
        "MovieLens (GroupLens)",
        "https://grouplens.org/datasets/movielens/",
        GROUPLENS_LICENCE,
        "Harper & Konstan, ACM TiiS 2015",
    ),
    "amazon2014": Source(
        "amazon2014",
        "Amazon product data 2014 (McAuley et al.)",
        "https://jmcauley.ucsd.edu/data/amazon/links.html",
        AMAZON2014_LICENCE,
        "He & McAuley, WWW 2016; McAuley et al., SIGIR 2015",
    ),
    "amazon2023": Source(
        "amazon2023",
        "Amazon Reviews 2023 (McAuley Lab)",
        "https://amazon-reviews-2023.github.io/",
        AMAZON2023_LICENCE,
        "Hou et al., arXiv 2403.03952",
    ),
    "mmrec": Source(
        "mmrec",
        "MMRec processed data sets",
        "https://github.com/enoche/MMRec/tree/master/data",
        MMREC_LICENCE,
        "Zhou, MMAsia Workshops 2023",
    ),
    "microlens": Source(
        "microlens",
        "MicroLens (MMRec layout)",
        "https://github.com/enoche/MMRec/tree/master/data",
        MICROLENS_LICENCE,
        "Ni et al., arXiv 2309.15379",
    ),
}

# GroupLens publishes ``<archive>.md5`` next to each archive; these are those published sums.
GROUPLENS_BASE = "https://files.grouplens.org/datasets/movielens"
ML100K_MD5 = "0e33842e24a9c977be4e0107933c0723"
ML1M_MD5 = "c4d9eecfca2ab87c1945afe126590906"

AMAZON2014_BASE = "http://snap.stanford.edu/data/amazon/productGraph"
AMAZON2023_BASE = "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_2023/raw"

# MMRec's README links these public Google-Drive folders (Baby/Sports/Clothing/Elec; MicroLens).
MMREC_DRIVE_FOLDER = "13cBy1EA_saTUuXxVllKgtfci2A09jyaG"
MICROLENS_DRIVE_FOLDER = "14UyTAh_YyDV8vzXteBJiy9jv8TBDK43w"
DRIVE_FOLDER_PAGE = "https://drive.google.com/drive/folders/{id}"
DRIVE_LIST_URL = "https://drive.google.com/embeddedfolderview?id={id}"
DRIVE_FILE_URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"


def _movielens(name: str, archive: str, md5: str, description: str) -> DatasetSpec:
    url = f"{GROUPLENS_BASE}/{archive}"
    return DatasetSpec(
        name=name,
        kind="movielens",
        layout="raw",
        source="grouplens",
        description=description,
        files={"archive": RemoteFile(url, archive, md5=md5, checksum_source=f"{url}.md5")},
        options={"variant": name},
    )


def _amazon2014(name: str, category: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        kind="amazon2014",
        layout="raw",
        source="amazon2014",
        description=f"Amazon 2014 '{category}': ratings + metadata + 4096-d image features, MMRec 5-core",
        files={
            "ratings": RemoteFile(f"{AMAZON2014_BASE}/categoryFiles/ratings_{category}.csv", f"ratings_{category}.csv"),
            "meta": RemoteFile(f"{AMAZON2014_BASE}/categoryFiles/meta_{category}.json.gz", f"meta_{category}.json.gz"),
            "image_features": RemoteFile(
                f"{AMAZON2014_BASE}/image_features/categoryFiles/image_features_{category}.b",
                f"image_features_{category}.b",
            ),
        },
        options={"category": category, "images": False},
    )


def _amazon2023(name: str, category: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        kind="amazon2023",
        layout="raw",
        source="amazon2023",
        description=f"Amazon Reviews 2023 '{category}': reviews + metadata + product images, 5-core",
        files={
            "reviews": RemoteFile(f"{AMAZON2023_BASE}/review_categories/{category}.jsonl.gz", f"{category}.jsonl.gz"),
            "meta": RemoteFile(
                f"{AMAZON2023_BASE}/meta_categories/meta_{category}.jsonl.gz", f"meta_{category}.jsonl.gz"
            ),
        },
        options={"category": category, "images": True},
    )


def _mmrec(name: str, folder: str, source: str, subfolder: str, description: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        kind="mmrec",
        layout="mmrec",
        source=source,
        description=description,
        options={"drive_folder": folder, "subfolder": subfolder},
    )


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        _mmrec("baby", MMREC_DRIVE_FOLDER, "mmrec", "baby", "MMRec Amazon Baby (5-core, x_label split, feats)"),
        _mmrec("sports", MMREC_DRIVE_FOLDER, "mmrec", "sports", "MMRec Amazon Sports (5-core, feats)"),
        _mmrec("clothing", MMREC_DRIVE_FOLDER, "mmrec", "clothing", "MMRec Amazon Clothing (5-core, feats)"),
        _mmrec("elec", MMREC_DRIVE_FOLDER, "mmrec", "elec", "MMRec Amazon Electronics (5-core, feats)"),
        _mmrec("microlens", MICROLENS_DRIVE_FOLDER, "microlens", "microlens", "MicroLens in the MMRec layout"),
        _amazon2014("amazon2014_baby", "Baby"),
        _amazon2014("amazon2014_sports", "Sports_and_Outdoors"),
        _amazon2014("amazon2014_clothing", "Clothing_Shoes_and_Jewelry"),
        _amazon2014("amazon2014_elec", "Electronics"),
        _amazon2023("amazon2023_baby", "Baby_Products"),
        _amazon2023("amazon2023_pets", "Pet_Supplies"),
        _amazon2023("amazon2023_clothing", "Clothing_Shoes_and_Jewelry"),
        _movielens("ml100k", "ml-100k.zip", ML100K_MD5, "MovieLens 100K: ratings + title, year, genres"),
        _movielens("ml1m", "ml-1m.zip", ML1M_MD5, "MovieLens 1M: ratings + title, year, genres"),
    ]
}

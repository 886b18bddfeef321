"""declared vs performed FLOPs on the synthetic test set"""
import sys, torch
sys.path.insert(0, ".")
from mmrec.models.products import count_work, total_flops
from tests.models.common import make_model
from mmrec.data import load_dataset
from mmrec.data.datamodule import GraphDataModule
ds = load_dataset("s", format="synthetic", split={"seed": 0}, synthetic=dict(n_users=400, n_items=300, n_factors=8, interactions_per_user=14, temperature=0.5, data_seed=3))
dm = GraphDataModule(ds, ds.features, batch_size=512, seed=0)
for name in sys.argv[1:]:
    model = make_model(name, dm); model.train(); model.on_epoch_start_hook()
    batch = next(iter(dm.train_dataloader()))
    d = model.training_products(len(batch["users"]))
    w = count_work(lambda: model.loss(batch).backward())
    model.eval()
    with torch.no_grad():
        wi = count_work(lambda: model.score(torch.arange(dm.data.n_users)))
    di = model.inference_products()
    print(f"{name:9s} train dense {total_flops(d, False)/max(w['dense'],1):.2f} sparse {total_flops(d, True)/max(w['sparse'],1):.2f} | infer dense {total_flops(di, False)/max(wi['dense'],1):.2f} sparse {total_flops(di, True)/max(wi['sparse'],1):.2f}")

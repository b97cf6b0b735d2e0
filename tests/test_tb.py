from torch.utils.tensorboard import SummaryWriter

from minimath.tb import read_scalars


def test_later_values_win_for_a_relogged_step(tmp_path):
    with SummaryWriter(str(tmp_path)) as w:
        for step, v in [(1, 1.0), (2, 2.0), (3, 3.0)]:
            w.add_scalar("train/loss", v, step)
    with SummaryWriter(str(tmp_path), filename_suffix=".resumed") as w:  # a resumed run re-logs step 3
        w.add_scalar("train/loss", 3.5, 3)
        w.add_scalar("train/loss", 4.0, 4)
    assert read_scalars(tmp_path, "train/loss") == {1: 1.0, 2: 2.0, 3: 3.5, 4: 4.0}
    assert read_scalars(tmp_path, "other") == {}

"""Try a trained model: `python eval.py ckpt=PATH "prompt='37 + 45 ='"`."""

import hydra
import torch
from omegaconf import DictConfig

from minimath.errors import exit_on_user_error
from minimath.generate import generate, load_for_inference


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    model, tokenizer = load_for_inference(cfg.ckpt)
    new_ids = generate(model, tokenizer.encode(cfg.prompt), cfg.max_new_tokens,
                       stop_id=tokenizer.eot_id if cfg.stop_at_eot else None, temperature=cfg.temperature,
                       generator=torch.Generator().manual_seed(cfg.seed))
    print(cfg.prompt + tokenizer.decode(new_ids))


if __name__ == "__main__":
    main()

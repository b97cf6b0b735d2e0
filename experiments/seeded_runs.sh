# Shared by the seeded experiments (source it from the repository root): one stage from a given checkpoint with a
# given seed — the seed orders the mixture, the generated sources keep seed 1234 so every run reads the same
# prepared data — on one thread (two runs share the 2 cores), then the held-out evaluation into outputs/NAME/eval.
#   seeded_stage NAME SEED STAGE INIT_CKPT [overrides...]
SOURCES=(general_en general_zh math_text word_problems_cot basic_math equations)

seeded_stage() {
  local name=$1 seed=$2 stage=$3 init=$4; shift 4
  local fixed=()
  for source in "${SOURCES[@]}"; do fixed+=("data.sources.$source.seed=1234"); done
  OMP_NUM_THREADS=1 python train.py stage="$stage" init_from="$init" run_name="$name" seed="$seed" "${fixed[@]}" \
    trainer.enable_progress_bar=false callbacks.heldout_eval.every_n_steps=100000 \
    checkpoint.every_n_train_steps=100000 "$@" > "outputs/$name.log" 2>&1
  OMP_NUM_THREADS=1 python eval.py ckpt="$(ls outputs/"$name"/stage"$stage"-*/checkpoints/final.ckpt)" \
    "tasks=[arithmetic,equations,word_problems]" hydra.run.dir="outputs/$name/eval" >> "outputs/$name.log" 2>&1
}

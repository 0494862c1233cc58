#!/usr/bin/env bash
# PEFT loads lorafit's adapters of the issue-13 architectures and gives lorafit's logits: for a
# tiny random Qwen3 (q_norm/k_norm, explicit head_dim, tied) and a Llama with llama3 RoPE
# (vocab 512, the stories260K tokenizer beside them), `lorafit train` writes an adapter on all
# seven projections, then tools/golden/check_peft_load.py loads it with PEFT 0.17.1 +
# transformers 4.57.6 and compares the next-token NLLs with `lorafit score --adapter`.
# Usage (repository root, after building): bash tools/golden/check_peft_recent.sh build/lorafit
set -euo pipefail
BIN=$(realpath "$1")
PY=${PY:-/opt/models-venv/bin/python}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMP_NUM_THREADS=2
source tests/cli/train_common.bash
make_stories "$W/stories.jsonl" 24
"$PY" - "$W" <<'PY'
import os, shutil, sys, torch
sys.path.insert(0, "tools/golden")
from make_models import COMMON, randomize_and_save
import make_models
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM
w = sys.argv[1]
make_models.OUT_DIR = w
for name, cfg_cls, model_cls, kw in [
        ("qwen3", Qwen3Config, Qwen3ForCausalLM, dict(hidden_size=64, intermediate_size=136, num_hidden_layers=2,
                                                       num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                                                       tie_word_embeddings=True, rope_theta=1e6)),
        ("llama31", LlamaConfig, LlamaForCausalLM, dict(hidden_size=64, intermediate_size=136, num_hidden_layers=2,
                                                        num_attention_heads=4, num_key_value_heads=2, rope_theta=100.0,
                                                        rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                                      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                                      "original_max_position_embeddings": 64}))]:
    torch.manual_seed(5)
    args = dict(COMMON, vocab_size=512, **kw)
    model = model_cls(cfg_cls(**args))
    out = randomize_and_save(model, model.config, torch.float32, 5, name)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join("tests/data/stories260K", f), out)
PY
status=0
for m in qwen3 llama31; do
  "$BIN" train --model "$W/$m" --data "$W/stories.jsonl" --output_dir "$W/run-$m" --dataset_format text \
    --lora_target all-linear --lora_r 4 --lora_alpha 8 --learning_rate 1e-2 --per_device_train_batch_size 4 \
    --gradient_accumulation_steps 1 --max_steps 6 --logging_steps 3 --save_steps 100 \
    --cache_dir "$W/cache" --quiet > "$W/train-$m.log" 2>&1 || { cat "$W/train-$m.log"; exit 1; }
  echo "== $m"
  "$PY" tools/golden/check_peft_load.py --lorafit "$BIN" --model "$W/$m" --adapter "$W/run-$m/final" || status=1
done
exit $status

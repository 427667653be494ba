"""Stage `base`: the general instruct model FinDAP starts from, so that forgetting can be measured against it.

The paper starts from Llama-3-8B-Instruct. With `model.pretrained` set, this stage loads that model and saves it
unchanged (no training), so every later stage reads its starting point from one folder whichever model it is. The
embedded default has no such model, so the stage makes one: the Llama of `params.yaml: model`, trained on the
packed general text and general/instruction-following conversations (`rows-<group>.parquet`). Held-out losses on CPT
text the mixture left out and on the assistant answers of evaluation items are measured before and after.

The non-obvious decision: this small model is trained from random weights on the same general corpus the joint stage
later mixes in, not on a separate pre-training corpus. It is the cheapest instruct model that exists offline; the
cost is that its "general ability" is narrow, so the forgetting the joint stage measures is forgetting of this
corpus, not of broad web knowledge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from curation.config import load_params, params
from curation.io import write_metrics
from curation.progress import setup_logging
from training.chat import stop_token_ids
from training.model import ModelParams, build_model, count_parameters
from training.trainer import (
    HeldOutParams,
    PackedRows,
    TrainParams,
    clear,
    fit,
    held_out_loss,
    held_out_sample,
    is_main,
    load_model,
    quiet_library_bars,
    rows_file,
    stage_args,
    summary_line,
)


log = logging.getLogger(__name__)
STAGE = "base"


@params
class BaseParams:
    group: str
    train: TrainParams


def main(argv: Sequence[str] | None = None) -> None:
    from transformers import AutoTokenizer

    paths, checkpoints = stage_args(argv, __doc__)
    quiet_library_bars()
    p = load_params(STAGE, BaseParams, paths.params)
    model_p = load_params("model", ModelParams, paths.params)
    held = load_params("held_out", HeldOutParams, paths.params)
    started = time.perf_counter()
    pack_dir, tokenizer_dir, mixture_dir = paths.inputs
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    special = tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    model = build_model(model_p, len(tokenizer), *special)
    if model_p.pretrained is None:  # a pretrained model's generation config already names its stop tokens
        model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    rows = rows_file(pack_dir, p.group)
    dataset = PackedRows([rows])
    seq_len = dataset.longest
    cpt, conversations = held_out_sample(mixture_dir, held)

    def measure(m: Any) -> dict[str, float | None]:
        return held_out_loss(m, tokenizer, cpt, conversations, batch_size=held.batch_size, max_length=seq_len)

    before = measure(model) if is_main() else {}
    train: dict[str, Any] | None = None
    if model_p.pretrained is None:
        train = fit(
            model,
            dataset,
            p.train,
            paths.output,
            checkpoints,
            seq_len,
            tokenizer.pad_token_id,
            model_p.attn_implementation,
            model_p.dtype,
            live_dir=paths.plots,
        )
    elif is_main():  # an instruct model already: saved unchanged, so later stages read one folder either way
        model.save_pretrained(str(paths.output))
    if not is_main():
        return
    tokenizer.save_pretrained(str(paths.output))
    clear(checkpoints)  # training finished: nothing left to resume
    after = before if train is None else measure(load_model(paths.output, model_p.attn_implementation, model_p.dtype))
    if train:
        history = train.pop("loss_history")
        train["first_loss"] = history[0][1] if history else None
    metrics = {
        "pretrained": model_p.pretrained,
        "parameters": count_parameters(model),
        "seq_len": seq_len,
        "held_out_texts": {"cpt": len(cpt), "it": len(conversations)},
        "held_out_before": before,
        "held_out_after": after,
        "train": train,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_metrics(metrics, paths.metrics)
    summary_line(STAGE, metrics)


if __name__ == "__main__":
    setup_logging()
    main()

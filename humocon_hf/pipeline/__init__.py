"""The training pipeline behind `humocon demo` and the stage commands (`pretrain`, `translate`, `tune`, `evaluate`,
`ablate`), one module per concern:

* `runner` - runs each stage once: `stage.json` markers, resuming an interrupted Trainer from its last complete
  checkpoint, stage locks, the multi-process helpers of `accelerate launch`.
* `fingerprints` - what each stage's fingerprint holds, so that a finished stage is reused until its inputs change.
* `data` - the benchmark and the real mocap (CMU, Bandai Namco, HDM05, the vocabulary clips, sequences) as the data
  stage stores them and the later stages read them back.
* `builders` - the concept-discovery config and model, the tokenizer and the processor a recipe describes.
* `stages` - `HuMoConPipeline`: the seven stages (data, pretrain = stage 1, translate = stage 2, tune = stage 3,
  baseline, evaluate, export) as methods over one recipe and output folder.
* `side_process` (+ `__main__`, the second process) - the text-only baseline trained alongside stage 3 on a CPU,
  one thread each.
* `evaluation` - `humocon evaluate --model DIR`: any checkpoint on a recipe's held-out questions.
* `reporting` - `results.json` and the summary, the tables, statistics over seeds, the real lines, previews and
  concept plots.
* `ablation` - the paper's Table 3 study over variants and seeds.

`humocon_hf.demo` is the recipe that runs all of it in one command; `humocon_hf.inference` loads and queries the
checkpoints it writes.
"""

"""The training pipeline behind `humocon demo` and the stage commands (`pretrain`, `translate`, `tune`, `evaluate`,
`ablate`), one module per concern:

* `runner` - runs each stage once: fingerprints of its inputs, `stage.json` markers, atomic writes, resuming an
  interrupted Trainer from its last complete checkpoint, the multi-process helpers of `accelerate launch`.
* `data` - the benchmark and the real mocap (CMU, Bandai Namco) as the stages consume them.
* `builders` - the concept-discovery config and model, the tokenizer and the processor a recipe describes.
* `stages` - `HuMoConPipeline`: the seven stages (data, pretrain = stage 1, translate = stage 2, tune = stage 3,
  baseline, evaluate, export) as methods over one recipe and output folder.
* `side_process` - the text-only baseline trained in a second process alongside stage 3 on a CPU, one thread
  each.
* `reporting` - the summary table, statistics over seeds, the real-CMU line, previews and concept plots.
* `ablation` - the paper's Table 3 study over variants and seeds.

`humocon_hf.demo` is the recipe that runs all of it in one command; `humocon_hf.inference` loads and queries the
checkpoints it writes.
"""

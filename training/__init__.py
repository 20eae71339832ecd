"""humocon_hf.training: the three training stages of HuMoCon, one module each.

* `concept_discovery`: stage 1, the motion / video encoders and their concept codebooks (`ConceptDiscoveryTrainer`);
* `modality_translation`: stage 2, only the projectors train (`ModalityTranslationTrainer`);
* `instruction_tuning`: stage 3, LoRA on the LLM (`InstructionTuningTrainer`), and `finetune` (stage 2 or 3 with the
  paper's recipe);
* `qa_collator` (`HuMoConQACollator`) and `qa_trainer_common` (setup mixin, loss at supervised positions): what
  stages 2 and 3 share;
* `checkpoints`: finding the last complete checkpoint of a run.
"""

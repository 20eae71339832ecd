"""humocon-hf: HuMoCon (human motion + video understanding through discovered concepts) for HuggingFace.

Importing the package registers the HuMoCon classes with transformers' Auto classes (as soon as transformers is
imported, not before), so `AutoModel.from_pretrained(checkpoint)` and `AutoProcessor.from_pretrained(checkpoint)` work
without `trust_remote_code`. Public classes are imported lazily (on first attribute access) to keep `import
humocon_hf` and the command line's `--help` fast.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_LAZY = {
    # input side
    "MotionClip": "humocon_hf.processing.motion_io",
    "load_motion": "humocon_hf.processing.motion_io",
    "load_bvh": "humocon_hf.processing.motion_io",
    "load_humanml3d_joints": "humocon_hf.processing.motion_io",
    "load_humanml3d_vecs": "humocon_hf.processing.motion_io",
    "load_amass_npz": "humocon_hf.processing.motion_io",
    "load_motionx_smplx": "humocon_hf.processing.motion_io",
    "MotionFeatureExtractor": "humocon_hf.processing.feature_extraction_motion",
    "HuMoConVideoProcessor": "humocon_hf.processing.video_processing_humocon",
    "MotionVideoProcessor": "humocon_hf.processing.processing_humocon",
    "render_motion": "humocon_hf.processing.rendering",
    "save_preview": "humocon_hf.processing.rendering",
    "check_plausibility": "humocon_hf.processing.plausibility",
    "listed_options": "humocon_hf.processing.answer_options",
    "AnswerOptionsLogitsProcessor": "humocon_hf.processing.answer_options",
    # models
    "HuMoConMotionEncoderConfig": "humocon_hf.modeling.configuration_humocon_encoders",
    "HuMoConVideoEncoderConfig": "humocon_hf.modeling.configuration_humocon_encoders",
    "HuMoConConceptDiscoveryConfig": "humocon_hf.modeling.configuration_humocon_encoders",
    "HuMoConMotionEncoder": "humocon_hf.modeling.modeling_humocon_encoders",
    "HuMoConVideoEncoder": "humocon_hf.modeling.modeling_humocon_encoders",
    "HuMoConForConceptDiscovery": "humocon_hf.modeling.modeling_humocon_concept_discovery",
    "HuMoConConfig": "humocon_hf.modeling.configuration_humocon",
    "HuMoConModel": "humocon_hf.modeling.modeling_humocon",
    "HuMoConForCausalLM": "humocon_hf.modeling.modeling_humocon",
    # the embedded LLM
    "load_default_llm": "humocon_hf.llm",
    "load_llm": "humocon_hf.llm",
    # training (stages 1-3)
    "ConceptDiscoveryTrainer": "humocon_hf.training.concept_discovery",
    "ConceptDiscoveryCollator": "humocon_hf.training.concept_discovery",
    "ConceptDiscoverySchedule": "humocon_hf.training.concept_discovery",
    "ConceptDiscoveryRecipe": "humocon_hf.training.concept_discovery",  # the schedule's earlier name
    "plot_concept_timeline": "humocon_hf.concepts",
    "extract_concepts": "humocon_hf.concepts",
    "HuMoConQACollator": "humocon_hf.training.qa_collator",
    "ModalityTranslationTrainer": "humocon_hf.training.modality_translation",
    "InstructionTuningTrainer": "humocon_hf.training.instruction_tuning",
    "apply_lora": "humocon_hf.training.instruction_tuning",
    "load_adapter": "humocon_hf.training.instruction_tuning",
    "merge_adapter": "humocon_hf.training.instruction_tuning",
    # stage 2 or 3 with the paper's recipe (`humocon_hf.finetune` is the module behind `humocon finetune`)
    "finetune_with_paper_recipe": "humocon_hf.training.instruction_tuning",
    # hub
    "register_auto_classes": "humocon_hf.auto",
    "save_for_remote_code": "humocon_hf.hub",
    "push_to_hub": "humocon_hf.hub",
    "default_model_card": "humocon_hf.hub",
}

if TYPE_CHECKING:  # pragma: no cover
    from .auto import register_auto_classes
    from .concepts import extract_concepts, plot_concept_timeline
    from .hub import default_model_card, push_to_hub, save_for_remote_code
    from .llm import load_default_llm, load_llm
    from .modeling.configuration_humocon import HuMoConConfig
    from .modeling.configuration_humocon_encoders import (
        HuMoConConceptDiscoveryConfig,
        HuMoConMotionEncoderConfig,
        HuMoConVideoEncoderConfig,
    )
    from .modeling.modeling_humocon import HuMoConForCausalLM, HuMoConModel
    from .modeling.modeling_humocon_concept_discovery import HuMoConForConceptDiscovery
    from .modeling.modeling_humocon_encoders import HuMoConMotionEncoder, HuMoConVideoEncoder
    from .processing.answer_options import AnswerOptionsLogitsProcessor, listed_options
    from .processing.feature_extraction_motion import MotionFeatureExtractor
    from .processing.motion_io import (
        MotionClip,
        load_amass_npz,
        load_bvh,
        load_humanml3d_joints,
        load_humanml3d_vecs,
        load_motion,
        load_motionx_smplx,
    )
    from .processing.plausibility import check_plausibility
    from .processing.processing_humocon import MotionVideoProcessor
    from .processing.rendering import render_motion, save_preview
    from .processing.video_processing_humocon import HuMoConVideoProcessor
    from .training.concept_discovery import ConceptDiscoveryCollator, ConceptDiscoverySchedule, ConceptDiscoveryTrainer
    from .training.instruction_tuning import (
        InstructionTuningTrainer,
        apply_lora,
        finetune_with_paper_recipe,
        load_adapter,
        merge_adapter,
    )
    from .training.modality_translation import ModalityTranslationTrainer
    from .training.qa_collator import HuMoConQACollator


# Submodules reachable as attributes before they are imported (`humocon_hf.finetune.finetune(...)`).
_SUBMODULES = ("finetune",)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it as an attribute
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'humocon_hf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__all__ = ["__version__", *_LAZY]


class _AutoRegistration(importlib.abc.MetaPathFinder):
    """Registers HuMoCon with the Auto classes once `transformers` is imported (one shot), instead of at `import
    humocon_hf`: registering imports torch and transformers' modeling code (3-5 s on a small CPU), which made
    `humocon --help` wait as long. Whoever imports transformers pays that cost anyway.

    When one of our own modules imports transformers first, registering then would re-enter that half-imported module;
    the registration waits until the outermost humocon_hf module being imported has finished.
    """

    def __init__(self):
        self.depth = 0  # humocon_hf submodules executing now
        self.pending = False  # transformers is imported, the registration not yet done

    def find_spec(self, name, path, target=None):
        if name != "transformers" and not name.startswith(f"{__name__}."):
            return None
        for finder in sys.meta_path:  # the spec the other finders give, as the import system would find it
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _NotifyingLoader(spec.loader, self, name == "transformers")
                return spec
        return None

    def module_done(self, is_transformers: bool) -> None:
        self.pending = self.pending or is_transformers
        if self.pending and self.depth == 0:
            self.pending = False
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            from .auto import register_auto_classes

            register_auto_classes()


class _NotifyingLoader(importlib.abc.Loader):
    """A module's own loader, telling `_AutoRegistration` when the module has run; the module keeps the original."""

    def __init__(self, loader, hook: _AutoRegistration, is_transformers: bool):
        self.loader, self.hook, self.is_transformers = loader, hook, is_transformers

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        own = not self.is_transformers
        self.hook.depth += own
        try:
            self.loader.exec_module(module)
        finally:
            self.hook.depth -= own
            module.__loader__ = self.loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self.loader
        self.hook.module_done(self.is_transformers)


def _register_with_transformers() -> None:
    # `import humocon_hf` must be enough for AutoModel / AutoProcessor to know HuMoCon: at once when transformers is
    # loaded, else once it is.
    if "transformers" in sys.modules:
        from .auto import register_auto_classes

        register_auto_classes()
    elif not any(isinstance(finder, _AutoRegistration) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AutoRegistration())


_register_with_transformers()

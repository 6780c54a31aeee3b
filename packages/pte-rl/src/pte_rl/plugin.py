"""Built-in rewards and backends, registered through the ``pte`` entry point."""

from .backends import HFBackend, HFConfig
from .hookspecs import hookimpl
from .rewards.length import OverlongConfig, OverlongReward
from .rewards.math import ExactConfig, ExactReward, FormatReward, MathConfig, MathReward
from .rewards.mathverify import MathVerifyConfig, MathVerifyReward


@hookimpl
def pte_register_rewards(register):
    register("math", MathReward, config=MathConfig,
             help="1 if the final answer is mathematically equal to the reference (safe, time-bounded).")
    register("exact", ExactReward, config=ExactConfig,
             help="1 if the final answer equals the reference after string normalisation.")
    register("format", FormatReward, config=ExactConfig,
             help="1 if the completion ends with a well-formed \\boxed{...} answer.")
    register("math-verify", MathVerifyReward, config=MathVerifyConfig,
             help="Hugging Face Math-Verify's extraction and equivalence (optional: pip install math-verify).")
    register("overlong", OverlongReward, config=OverlongConfig,
             help="DAPO's soft overlong penalty: 0, ramping to -1 over the last `buffer` tokens before max_length.")


@hookimpl
def pte_register_backends(register):
    register("hf", HFBackend, config=HFConfig,
             help="transformers causal LM: built-in name, local folder, .gguf file or cached hub id.")

"""Tiny random models shared by the pte-rl tests (imported by name; pytest fixtures live in conftest.py)."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def tiny_llama(seed: int = 0):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        eos_token_id=3, pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()

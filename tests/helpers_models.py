"""Tiny random-weight vision-language models built offline from configs, saved to a local folder.

Each ``make_tiny_<arch>(tmp_path)`` returns the folder path, loadable with ``mint.models.load_model``
(and with ``AutoModelForImageTextToText`` + ``AutoProcessor``, except Qwen2-VL whose processor needs
torchvision). Shared by the model and tuning tests.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mint.models.wordtok import build_word_tokenizer

WORDS = (
    "what color is the shape ? answer with one word . red blue green yellow gray black teal brown "
    "circle rectangle triangle yes no does image contain a digit zero one two three four five six seven "
    "eight nine which number in text"
)


def _text_kwargs(tok, **extra) -> dict:
    return dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **extra,
    )


def _save(model, proc, path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    proc.save_pretrained(path)
    return str(path)


def make_tiny_llava(tmp_path: Path, seed: int = 0) -> str:
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = build_word_tokenizer([WORDS])
    ip = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc = LlavaProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tok.chat_template,
    )
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            projection_dim=32,
        ),
        text_config=LlamaConfig(**_text_kwargs(tok)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    return _save(LlavaForConditionalGeneration(cfg), proc, Path(tmp_path) / "tiny-llava")


def make_tiny_idefics3(tmp_path: Path, seed: int = 0) -> str:
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor, LlamaConfig
    from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    specials = ("<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>")
    tok = build_word_tokenizer([WORDS], image_tokens=specials)
    ip = Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": 32}, max_image_size={"longest_edge": 32}
    )
    proc = Idefics3Processor(
        image_processor=ip, tokenizer=tok, image_seq_len=4, chat_template=tok.chat_template
    )
    cfg = Idefics3Config(
        vision_config=Idefics3VisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=LlamaConfig(**_text_kwargs(tok)),
        scale_factor=2,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return _save(Idefics3ForConditionalGeneration(cfg), proc, Path(tmp_path) / "tiny-idefics3")


def make_tiny_paligemma(tmp_path: Path, seed: int = 0) -> str:
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipVisionConfig,
    )
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tok = build_word_tokenizer([WORDS], chat_template=None)
    ip = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    ip.image_seq_length = 16
    proc = PaliGemmaProcessor(image_processor=ip, tokenizer=tok)
    cfg = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=32,
        ),
        text_config=GemmaConfig(**_text_kwargs(tok, head_dim=16)),
        projection_dim=32,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return _save(PaliGemmaForConditionalGeneration(cfg), proc, Path(tmp_path) / "tiny-paligemma")


QWEN_TEMPLATE_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


def make_tiny_qwen2vl(
    tmp_path: Path, seed: int = 0, words: str = WORDS, chat_template: str | None = None
) -> str:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    specials = ("<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>")
    tok = build_word_tokenizer([words], image_tokens=specials, image_token="<|image_pad|>")
    tok.chat_template = (chat_template or tok.chat_template).replace(
        "<|image_pad|> ", QWEN_TEMPLATE_IMAGE + " "
    )
    ip = Qwen2VLImageProcessorPil(
        patch_size=8, merge_size=2, temporal_patch_size=2, min_pixels=32 * 32, max_pixels=32 * 32
    )
    ids = {t: tok.convert_tokens_to_ids(t) for t in specials}
    cfg = Qwen2VLConfig(
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 8,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config=_text_kwargs(
            tok, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    path = Path(tmp_path) / "tiny-qwen2vl"
    model = Qwen2VLForConditionalGeneration(cfg)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    ip.save_pretrained(path)
    return str(path)


MAKERS = {
    "llava": make_tiny_llava,
    "idefics3": make_tiny_idefics3,
    "paligemma": make_tiny_paligemma,
    "qwen2_vl": make_tiny_qwen2vl,
}


def assert_scoring_paths_agree(vlm, task, expanded: bool = False) -> None:
    """On ``task``'s test samples: the shared-prefix scores of the both and non-text prompts (and, with
    ``expanded``, the one-pass expanded scores) equal the prompt-at-a-time scores, and predicting every mode
    together equals predicting one mode at a time."""
    from mint.models.scoring import answer_logprobs, answer_logprobs_expanded, answer_logprobs_shared

    prompts = {m: [vlm.build_prompt(task, s, m) for s in task.test] for m in ("both", "image")}
    both, media = [p for p, _ in prompts["both"]], [x for _, x in prompts["both"]]
    with torch.inference_mode():
        ref = {
            m: answer_logprobs(vlm, [p for p, _ in ps], [x for _, x in ps], task.answers)
            for m, ps in prompts.items()
        }
        shared = answer_logprobs_shared(vlm, both, [p for p, _ in prompts["image"]], media, task.answers)
        if expanded:
            one_pass = answer_logprobs_expanded(vlm, both, media, task.answers)
            assert torch.allclose(one_pass, ref["both"], atol=2e-4)
    assert shared is not None
    assert torch.allclose(shared[0], ref["both"], atol=2e-4) and torch.allclose(
        shared[1], ref["image"], atol=2e-4
    )
    together = vlm.predict_modes(task, task.test, batch_size=4, progress=False)
    for m in ("both", "image", "text"):
        assert together[m] == vlm.predict(task, task.test, m, batch_size=3, progress=False)

"""Export a local Hugging Face BERT-family model folder to ONNX for transformers.js.

The embed benchmark compares our runtime with transformers.js, which runs ONNX models; the
model packages we can install ship safetensors only. This writes <model>/onnx/model.onnx with
the inputs and output transformers.js' feature-extraction pipeline expects
(input_ids, attention_mask, token_type_ids -> last_hidden_state), float32.

    python3 tools/export_onnx.py test/models/all-MiniLM-L6-v2

Needs torch and transformers (pip install torch transformers onnx). Not used by the tests.
"""
import os
import sys

import torch
from transformers import AutoModel


def main(model_dir: str) -> None:
    out_dir = os.path.join(model_dir, "onnx")
    out = os.path.join(out_dir, "model.onnx")
    if os.path.exists(out):
        print(f"{out} exists")
        return
    os.makedirs(out_dir, exist_ok=True)
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()

    class Wrapper(torch.nn.Module):
        # Keyword arguments: the positional order of BertModel.forward differs across versions.
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    dyn = {0: "batch_size", 1: "sequence_length"}
    tmp = out + ".part"
    torch.onnx.export(
        Wrapper(model),
        args,
        tmp,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn, "last_hidden_state": dyn},
        opset_version=17,
        dynamo=False,
    )
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

"""Networks and their sizing, one module each (import from the module itself):

- `ml.models.sizing`: which encoder suits an image size (torch-free: the web server uses it);
- `ml.models.encoders`: image → embedding (`build_encoder`, `ENCODERS`);
- `ml.models.decoders`: embedding → image (`build_decoder`);
- `ml.models.heads`: projection and prediction heads of the contrastive methods.

This package's `__init__` imports nothing, so that importing `ml.models.sizing` does not load torch.
"""

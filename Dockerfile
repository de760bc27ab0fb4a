# latentmap dashboard. CPU build; on a GPU host install a CUDA torch wheel instead.
FROM python:3.11-slim

WORKDIR /opt/latentmap
ENV PIP_NO_CACHE_DIR=1 \
    LATENTMAP_DATA_DIR=/data

COPY pyproject.toml README.md ./
COPY app ./app
COPY ml ./ml
COPY templates ./templates
COPY static ./static

# Editable install: templates/ and static/ are read from this directory at run time.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.2,<2.15" "torchvision>=0.17,<0.30" \
    && pip install -e . \
    && python -m ml.numba_cache

VOLUME ["/data"]
EXPOSE 8000
# Binding beyond loopback needs LATENTMAP_TOKEN (or --insecure): see README.
CMD ["latentmap", "serve", "--host", "0.0.0.0", "--port", "8000"]

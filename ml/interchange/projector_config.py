"""TensorBoard's `projector_config.pbtxt`: the ProjectorConfig message in protobuf text format.

Parsed and written by protobuf's own text_format, on the message TensorBoard declares in
tensorboard/plugins/projector/projector_config.proto (same fields, same numbers), declared here
through protobuf's descriptor API so that reading an export needs protobuf only, not tensorboard.
The tests check both ways against tensorboard's generated projector_config_pb2.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

CONFIG_FILE = "projector_config.pbtxt"
_PACKAGE = "latentmap.projector"  # a pool of its own: never clashes with tensorboard's when both are loaded

_FIELDS = {
    "SpriteMetadata": (("image_path", 1, "STRING", False, None), ("single_image_dim", 2, "UINT32", True, None)),
    "EmbeddingInfo": (("tensor_name", 1, "STRING", False, None), ("metadata_path", 2, "STRING", False, None),
                      ("bookmarks_path", 3, "STRING", False, None), ("tensor_shape", 4, "UINT32", True, None),
                      ("sprite", 5, "MESSAGE", False, "SpriteMetadata"), ("tensor_path", 6, "STRING", False, None)),
    "ProjectorConfig": (("model_checkpoint_path", 1, "STRING", False, None),
                        ("embeddings", 2, "MESSAGE", True, "EmbeddingInfo"),
                        ("model_checkpoint_dir", 3, "STRING", False, None)),
}


@lru_cache(maxsize=1)
def projector_config_class() -> Any:
    """The ProjectorConfig message class (a protobuf message with TensorBoard's fields)."""
    file_proto = descriptor_pb2.FileDescriptorProto(name="latentmap/projector_config.proto", package=_PACKAGE,
                                                    syntax="proto3")
    for message_name, fields in _FIELDS.items():
        message = file_proto.message_type.add(name=message_name)
        for name, number, kind, repeated, type_name in fields:
            field = message.field.add(name=name, number=number,
                                      type=getattr(descriptor_pb2.FieldDescriptorProto, f"TYPE_{kind}"),
                                      label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if repeated
                                      else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.ProjectorConfig"))


def parse_config(text: str) -> Any:
    """A ProjectorConfig from pbtxt text; raises text_format.ParseError on a malformed file."""
    return text_format.Parse(text, projector_config_class()())


def config_text(embeddings: list[dict[str, Any]]) -> str:
    """pbtxt of a ProjectorConfig with these embeddings (dicts of EmbeddingInfo fields; sprite a dict)."""
    config = projector_config_class()()
    for fields in embeddings:
        info = config.embeddings.add()
        for name, value in fields.items():
            if name == "sprite":
                info.sprite.image_path = value["image_path"]
                info.sprite.single_image_dim.extend(value["single_image_dim"])
            elif isinstance(value, (list, tuple)):
                getattr(info, name).extend(value)
            else:
                setattr(info, name, value)
    return text_format.MessageToString(config)

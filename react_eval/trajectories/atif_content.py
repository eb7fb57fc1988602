"""ATIF's multimodal content: text, image and audio parts of a message or result.

Split from :mod:`react_eval.trajectories.atif` (which re-exports every name);
:class:`Strict` is the base of every ATIF object there and here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["AudioSource", "ContentPart", "ImageSource", "Strict"]

ImageMediaType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
AudioMediaType = Literal[
    "audio/wav",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/ogg",
    "audio/flac",
    "audio/webm",
    "audio/aiff",
]

# Unregistered spellings of audio MIME types that producers emit in practice
# (Gemini's "audio/mp3" above all); stored under their canonical name.
_AUDIO_MEDIA_TYPE_SYNONYMS: dict[str, str] = {
    "audio/mp3": "audio/mpeg",
    "audio/mpga": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-aac": "audio/aac",
    "audio/x-flac": "audio/flac",
    "audio/x-aiff": "audio/aiff",
}

class Strict(BaseModel):
    """Base of every ATIF object: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------
# Multimodal content
# --------------------------------------------------------------------------


class ImageSource(Strict):
    """Where an image lives: a file path (relative or absolute) or a URL."""

    media_type: ImageMediaType = Field(description="The image's MIME type.")
    path: str = Field(description="File path or URL of the image.")


class AudioSource(Strict):
    """Where an audio clip lives (ATIF-v1.8): a file path or a URL."""

    media_type: AudioMediaType = Field(description="The audio's MIME type.")
    path: str = Field(description="File path or URL of the audio.")
    duration_sec: float | None = Field(
        default=None, ge=0, description="Length of the clip in seconds, when known."
    )

    @field_validator("media_type", mode="before")
    @classmethod
    def _canonical_media_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return _AUDIO_MEDIA_TYPE_SYNONYMS.get(lowered, lowered)
        return value


class ContentPart(Strict):
    """One piece of a multimodal message: text, an image or an audio clip."""

    type: Literal["text", "image", "audio"] = Field(description="Kind of this part.")
    text: str | None = Field(default=None, description="The text; only for type 'text'.")
    source: ImageSource | AudioSource | None = Field(
        default=None,
        description="The media reference; only for type 'image' or 'audio'.",
    )

    @model_validator(mode="after")
    def _payload_matches_type(self) -> "ContentPart":
        if self.type == "text":
            if self.text is None:
                raise ValueError("a 'text' content part needs the 'text' field")
            if self.source is not None:
                raise ValueError("a 'text' content part must not have a 'source'")
            return self
        if self.text is not None:
            raise ValueError(f"an '{self.type}' content part must not have 'text'")
        if self.source is None:
            raise ValueError(f"an '{self.type}' content part needs a 'source'")
        wanted = ImageSource if self.type == "image" else AudioSource
        if not isinstance(self.source, wanted):
            raise ValueError(
                f"content part of type '{self.type}' has a source with media_type "
                f"{self.source.media_type!r}, which is not an {self.type} type"
            )
        return self

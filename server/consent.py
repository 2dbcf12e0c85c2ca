"""Texts a user consents to, each with the version recorded next to the consent.

A new wording gets a new version; the consents already given keep pointing at the version that
was shown. Issue pages and the API show ``BIOMETRIC.text[language]``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConsentText(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    version: str
    text: dict[str, str]


BIOMETRIC = ConsentText(
    kind="biometric",
    version="2026-05-06",
    text={
        "en": (
            "I consent to Kadrio processing the biometric data (faces and voices) contained in "
            "this file, only to make clips from it in my account: speech transcription, moment "
            "selection and rendering. The file, its transcript and clips are kept until I delete "
            "the job or my plan's retention period ends."
        ),
        "ru": (
            "Я даю согласие на обработку Kadrio биометрических персональных данных (изображений "
            "лиц и голосов), содержащихся в этом файле, только для создания клипов в моём "
            "аккаунте: распознавания речи, выбора моментов и монтажа. Файл, расшифровка и клипы "
            "хранятся, пока я не удалю задачу или не истечёт срок хранения по моему тарифу."
        ),
    },
)

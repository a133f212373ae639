"""The embedded audio suite (``builtin:audio``): tones, rhythms and voice-like intonation, synthesised.

Every sound is one second at ``RATE`` Hz, described by a few numbers drawn from a seed and synthesised on
access (:class:`SynthAudio`), so a suite holds descriptions, not waveforms. Each task has its interaction
kind by construction, as in the image and video suites:

* ``audio_pitch`` (uniqueness, audio): a steady tone, low (180-300 Hz) or high (700-1100 Hz);
* ``audio_beats`` (uniqueness, audio): a **rhythm** of one to four short beeps; how many;
* ``audio_intonation`` (uniqueness, audio) needs **the order in time**: a voice-like harmonic sound whose
  pitch rises or falls (the contour of a question or a statement). A falling sound is a rising one played
  backwards, both drawn from the same pitch spans under a symmetric loudness envelope, so the sound's
  spectrum without its order cannot tell them apart;
* ``text_pitch`` (uniqueness, text): the text names a pitch; the tone is drawn independently;
* ``pitch_caption`` (redundancy): the caption states the pitch the tone has;
* ``pitch_match`` and ``beats_match`` (synergy): the text names a pitch (a beep count), the sound has
  one; yes and no are balanced for every question text, and the named value is the heard one or another,
  so neither the text nor the sound alone tells the answer.

``build_audio_suite(name)``: ``audio`` (7 tasks, at most 200 train / 100 test samples each) and
``audio-mini`` (40 / 20).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mint.errors import MintError
from mint.tasks.audio import AudioSample, AudioSource, Waveform
from mint.tasks.builtin.generated import Generated

RATE = 16000
SECONDS = 1.0
PITCHES = {"low": (180.0, 300.0), "high": (700.0, 1100.0)}
COUNTS = ("one", "two", "three", "four")
CONTOURS = ("rising", "falling")
BEEP = 0.08  #: seconds a beep lasts; beeps start in four slots of a quarter second
HARMONICS = 5  #: partials of the voice-like sound (amplitude 1/k)
YES_NO = ["yes", "no"]


@dataclass(frozen=True)
class Sound:
    """One generated sound: ``kind`` ``tone`` (``freqs``: one frequency), ``beats`` (``freqs``: the beep
    frequency; ``onsets``: start times in seconds) or ``voice`` (``freqs``: start and end pitch)."""

    kind: str
    freqs: tuple[float, ...]
    onsets: tuple[float, ...] = ()


def _fade(n: int, edge: int) -> np.ndarray:
    env = np.ones(n)
    ramp = np.linspace(0.0, 1.0, edge)
    env[:edge], env[n - edge :] = ramp, ramp[::-1]
    return env


def render(s: Sound) -> np.ndarray:
    """The float32 samples of ``s`` (``SECONDS`` at ``RATE``)."""
    n = int(SECONDS * RATE)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    if s.kind == "tone":
        out = 0.5 * np.sin(2 * np.pi * s.freqs[0] * t) * _fade(n, RATE // 100)
    elif s.kind == "beats":
        m = int(BEEP * RATE)
        beep = 0.5 * np.sin(2 * np.pi * s.freqs[0] * np.arange(m) / RATE) * _fade(m, RATE // 200)
        for onset in s.onsets:
            start = int(round(onset * RATE))
            out[start : start + m] += beep
    elif s.kind == "voice":  # the glide up from the lower pitch, exponential; played backwards to fall
        lo, hi = sorted(s.freqs)
        phase = 2 * np.pi * np.cumsum(lo * (hi / lo) ** (t / SECONDS)) / RATE
        env = np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2  # symmetric in time
        out = sum(np.sin(k * phase) / k for k in range(1, HARMONICS + 1)) * 0.3 * env
        out = out if s.freqs[0] <= s.freqs[1] else out[::-1]
    else:
        raise MintError(f"unknown sound kind {s.kind!r}")
    return out.astype(np.float32)


class SynthAudio(AudioSource):
    """A generated :class:`Sound`, synthesised on access."""

    __slots__ = ("sound",)

    def __init__(self, sound: Sound) -> None:
        self.sound = sound

    def load(self) -> Waveform:
        return Waveform(render(self.sound), RATE)

    def __repr__(self) -> str:
        return f"SynthAudio({self.sound!r})"


def random_tone(rng: np.random.Generator, pitch: str | None = None) -> tuple[str, Sound]:
    pitch = pitch or list(PITCHES)[int(rng.integers(len(PITCHES)))]
    lo, hi = PITCHES[pitch]
    return pitch, Sound("tone", (round(float(rng.uniform(lo, hi)), 1),))


def random_beats(rng: np.random.Generator, count: int | None = None) -> Sound:
    count = count or int(rng.integers(1, len(COUNTS) + 1))
    slots = sorted(rng.choice(4, size=count, replace=False).tolist())
    onsets = tuple(round(0.25 * k + float(rng.uniform(0.02, 0.25 - BEEP - 0.02)), 3) for k in slots)
    return Sound("beats", (round(float(rng.uniform(400.0, 700.0)), 1),), onsets)


def random_voice(rng: np.random.Generator, contour: str) -> Sound:
    """A voice-like glide: the span (low, high) is drawn alike for both contours, then run one way."""
    low = float(rng.uniform(100.0, 160.0))
    high = low * float(rng.uniform(1.5, 2.0))
    span = (round(low, 1), round(high, 1))
    return Sound("voice", span if contour == "rising" else span[::-1])


def _sample(sid: str, text: str, answer: str, sound: Sound, **meta: object) -> AudioSample:
    info = {"sound": sound.kind, "freqs": list(sound.freqs), **meta}
    if sound.onsets:
        info["onsets"] = list(sound.onsets)
    return AudioSample(sid, text, answer, audio=SynthAudio(sound), meta=info)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


_PITCH_TEXTS = ("the note is {p}.", "a {p} sound.", "sing it {p}.", "the word is {p}.")
_CAPTIONS = ("a {p} tone.", "this tone is {p}.", "you hear a {p} note.")
_PITCH_QUESTIONS = ("is the tone {p}?", "is this a {p} note?")
_BEAT_QUESTIONS = ("are there {n} beeps?", "do you hear {n} beeps?")

Samples = Callable[[str, np.random.Generator, int], list[AudioSample]]


def _pitch(split: str, rng: np.random.Generator, n: int) -> list[AudioSample]:
    out = []
    for k in range(n):
        pitch, s = random_tone(rng, list(PITCHES)[k % 2])
        out.append(_sample(f"{split}-{k}", "", pitch, s, pitch=pitch))
    return out


def _beats(split: str, rng: np.random.Generator, n: int) -> list[AudioSample]:
    out = []
    for k in range(n):
        s = random_beats(rng, k % len(COUNTS) + 1)
        out.append(_sample(f"{split}-{k}", "", COUNTS[len(s.onsets) - 1], s))
    return out


def _intonation(split: str, rng: np.random.Generator, n: int) -> list[AudioSample]:
    out = []
    for k in range(n):
        contour = CONTOURS[k % 2]
        out.append(_sample(f"{split}-{k}", "", contour, random_voice(rng, contour)))
    return out


def _text_pitch(split: str, rng: np.random.Generator, n: int) -> list[AudioSample]:
    out = []
    for k in range(n):
        named = list(PITCHES)[k % 2]
        heard, s = random_tone(rng)  # drawn independently of the answer
        out.append(_sample(f"{split}-{k}", _pick(rng, _PITCH_TEXTS).format(p=named), named, s, pitch=heard))
    return out


def _pitch_caption(split: str, rng: np.random.Generator, n: int) -> list[AudioSample]:
    out = []
    for k in range(n):
        pitch, s = random_tone(rng, list(PITCHES)[k % 2])
        out.append(_sample(f"{split}-{k}", _pick(rng, _CAPTIONS).format(p=pitch), pitch, s, pitch=pitch))
    return out


def _pitch_match(split: str, rng: np.random.Generator, n: int) -> list[AudioSample]:
    """Yes/no, balanced over (question text, answer)."""
    out = []
    for k in range(n):
        heard, s = random_tone(rng)
        yes = (k // len(_PITCH_QUESTIONS)) % 2 == 0
        named = heard if yes else _pick(rng, [p for p in PITCHES if p != heard])
        text = _PITCH_QUESTIONS[k % len(_PITCH_QUESTIONS)].format(p=named)
        out.append(_sample(f"{split}-{k}", text, "yes" if yes else "no", s, pitch=heard, named=named))
    return out


def _beats_match(split: str, rng: np.random.Generator, n: int) -> list[AudioSample]:
    """Yes/no, balanced over (question text, answer)."""
    out = []
    for k in range(n):
        s = random_beats(rng)
        heard = COUNTS[len(s.onsets) - 1]
        yes = (k // len(_BEAT_QUESTIONS)) % 2 == 0
        named = heard if yes else _pick(rng, [c for c in COUNTS if c != heard])
        text = _BEAT_QUESTIONS[k % len(_BEAT_QUESTIONS)].format(n=named)
        out.append(_sample(f"{split}-{k}", text, "yes" if yes else "no", s, named=named))
    return out


@dataclass(frozen=True)
class AudioBuiltin:
    name: str
    kind: str
    dominant: str | None
    instruction: str
    answers: list[str]
    description: str
    samples: Samples


_SOURCE = f"generated: 1 s at {RATE} Hz, tones, beeps and voice-like glides (mint.tasks.builtin.audio)"

AUDIO_TASKS: dict[str, AudioBuiltin] = {
    b.name: b
    for b in [
        AudioBuiltin(
            "audio_pitch",
            "uniqueness",
            "audio",
            "Is the tone high or low? Answer with one word.",
            list(PITCHES),
            "A steady tone with no sample text: only the audio tells whether it is high (700-1100 Hz) or "
            "low (180-300 Hz).",
            _pitch,
        ),
        AudioBuiltin(
            "audio_beats",
            "uniqueness",
            "audio",
            "How many beeps do you hear? Answer with one number word.",
            list(COUNTS),
            "One to four short beeps at random moments, with no sample text: only the rhythm tells the count.",
            _beats,
        ),
        AudioBuiltin(
            "audio_intonation",
            "uniqueness",
            "audio",
            "Does the voice go up or down? Answer rising or falling.",
            list(CONTOURS),
            "A voice-like harmonic sound whose pitch rises or falls, with no sample text: only the audio "
            "in time order tells (played backwards, a rising sound is a falling one of the same span).",
            _intonation,
        ),
        AudioBuiltin(
            "text_pitch",
            "uniqueness",
            "text",
            "Which pitch does the text name? Answer high or low.",
            list(PITCHES),
            "A sentence naming a pitch ('the note is high.') beside a tone drawn independently: the text "
            "determines the answer, the tone matches it only by chance (1 in 2).",
            _text_pitch,
        ),
        AudioBuiltin(
            "pitch_caption",
            "redundancy",
            None,
            "Is the tone high or low? Answer with one word.",
            list(PITCHES),
            "A tone with a caption stating its pitch ('this tone is low.'): the caption alone and the "
            "audio alone each determine the answer.",
            _pitch_caption,
        ),
        AudioBuiltin(
            "pitch_match",
            "synergy",
            None,
            "Does the text name the pitch of the tone? Answer with yes or no.",
            YES_NO,
            "A question naming a pitch ('is the tone high?'), the heard one or the other; yes and no "
            "balanced for every question text: neither the text nor the audio alone tells the answer.",
            _pitch_match,
        ),
        AudioBuiltin(
            "beats_match",
            "synergy",
            None,
            "Does the text give the number of beeps? Answer with yes or no.",
            YES_NO,
            "A question naming a beep count ('are there three beeps?'), the heard one or another at "
            "random; yes and no balanced for every question text: neither the text nor the audio alone "
            "tells the answer.",
            _beats_match,
        ),
    ]
}

#: suite name -> (tasks, train samples a task, test samples a task)
AUDIO_SUITES: dict[str, tuple[list[str], int, int]] = {
    "audio": (list(AUDIO_TASKS), 200, 100),
    "audio-mini": (list(AUDIO_TASKS), 40, 20),
}


AUDIO = Generated("audio", AUDIO_TASKS, AUDIO_SUITES, _SOURCE)


#: the built-in audio task ``name`` with ``max_train`` / ``max_test`` generated samples
build_audio_task = AUDIO.task
#: the built-in audio suite ``name``; ``max_train`` / ``max_test`` replace its per-task sizes
build_audio_suite = AUDIO.suite

"""Claim `distillation` — seed 003, slides "Destilação de Conhecimento".

"A small student trained to imitate a large teacher's temperature-softened outputs (soft targets,
response-based offline distillation) learns what the labels alone do not teach it; the slides'
example shrinks a model from 38 M to 159 K parameters without accuracy loss (1/240 of the size)."

Teacher: the GoogLeNet fixture (534,554 parameters). Student: `student` (24,234 parameters, 1/22).
The slides' quantity is the accuracy a distilled student gains over the same student trained on the
labels alone. One setting and one seed cannot decide that, so the verdict comes from a pre-registered
protocol (`greenbench.nn.distillation`, run by `greenbench distil`, its record in
`fixtures/distillation-protocol.json`):
1. (T, α) chosen on the validation split from the grid T ∈ {2, 4, 8} × α ∈ {0.5, 0.9} (5 epochs, first
   seed) — the test set is not looked at;
2. for three seeds, the student trained for 15 epochs on the labels and with the chosen setting, each
   pair with the same initialisation, split and batch order.
Tested quantity: the paired gain on the 10,000 test images, per seed and over the three. Tolerance
(stated before the students were trained): the distilled students must be the more accurate on average
and by a McNemar exact test on the discordant predictions of all three seeds pooled (p < 0.05) — a
difference the test can resolve; the verdict stands whatever it is. The gap to the teacher is recorded
beside the slides' "no loss". The nightly tier retrains the first seed's pair and checks that it
reproduces its fixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from greenbench.analysis.statistics import mcnemar
from greenbench.harness.claims import Metric
from greenbench.nn.data import to_network_input
from greenbench.nn.distillation import SEEDS, read_protocol, student_checkpoint
from greenbench.nn.models import build_network, count_parameters
from greenbench.nn.training import load_checkpoint, predict_logits, train_network

pytestmark = pytest.mark.claim("distillation")

SLIDES_RATIO = 159e3 / 38e6
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KINDS = ("labels", "distilled")


@pytest.fixture(scope="module")
def protocol(trained_networks):
    """The protocol's record and every student it names, each checked against the record's sha256."""
    try:
        record = read_protocol(FIXTURES)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    students = {}
    for seed in record["seeds"]:
        for kind in KINDS:
            path = student_checkpoint(FIXTURES, kind, seed)
            if not path.is_file():
                pytest.skip(f"no {path.name}: run `greenbench distil` (it resumes)")
            model, meta = load_checkpoint(path)
            if meta["weights_sha256"] != record["students"].get(f"{kind}-{seed}", {}).get("weights_sha256"):
                raise ValueError(f"{path.name} is not the student {FIXTURES / 'distillation-protocol.json'} "
                                 "records: rerun `greenbench distil`")
            students[kind, seed] = (model, meta)
    return record, students


def test_distilled_students_beat_the_same_students_trained_on_labels(protocol, trained_networks, claim):
    record, students = protocol
    data = trained_networks.dataset
    x, y = to_network_input(data.test_images), data.test_labels
    correct = {key: predict_logits(model, x).argmax(1) == y for key, (model, _) in students.items()}
    seeds = record["seeds"]
    per_seed = {seed: mcnemar(correct["labels", seed], correct["distilled", seed]) for seed in seeds}
    gains = np.array([100 * (correct["distilled", s].mean() - correct["labels", s].mean()) for s in seeds])
    pooled = mcnemar(np.concatenate([correct["labels", s] for s in seeds]),
                     np.concatenate([correct["distilled", s] for s in seeds]))
    _, teacher_meta = trained_networks.checkpoint("googlenet")
    teacher_params = count_parameters(build_network("googlenet"))
    student_params = count_parameters(build_network("student"))
    distilled_acc = float(np.mean([correct["distilled", s].mean() for s in seeds]))
    discordant = pooled.only_first_correct + pooled.only_second_correct
    claim.verdict(gains.mean() > 0 and pooled.p_value < 0.05,
                  claimed="distillation beats labels alone for the same student (slides: no loss at 1/240)",
                  tolerance="pre-registered: mean gain over 3 seeds > 0 and pooled McNemar p < 0.05",
                  measured={"chosen T": record["chosen"]["temperature"], "chosen alpha": record["chosen"]["alpha"],
                            "selection (T, alpha: val acc)": ", ".join(
                                f"{r['temperature']:g}/{r['alpha']:g}: {r['validation_accuracy']:.4f}"
                                for r in record["selection"]),
                            "gain pp per seed": ", ".join(f"{g:+.2f}" for g in gains),
                            "mean gain pp": float(gains.mean()),
                            "McNemar p per seed": ", ".join(f"{per_seed[s].p_value:.3g}" for s in seeds),
                            "pooled McNemar p": pooled.p_value, "pooled discordant": discordant,
                            "acc labels (mean)": float(np.mean([correct["labels", s].mean() for s in seeds])),
                            "acc distilled (mean)": distilled_acc,
                            "teacher acc": teacher_meta["test_accuracy"],
                            "gap to teacher pp": 100 * (teacher_meta["test_accuracy"] - distilled_acc),
                            "student/teacher params": f"{student_params:,}/{teacher_params:,} "
                                                      f"(1/{teacher_params / student_params:.0f}; slides 1/"
                                                      f"{1 / SLIDES_RATIO:.0f})"},
                  metrics={"mean_gain_pp": Metric(float(gains.mean()), 100 * discordant**0.5 / (len(y) * len(seeds)),
                                                  "higher", "pp")},
                  inputs={"data_md5": data.checksum, "teacher_sha256": teacher_meta["weights_sha256"],
                          "protocol_date": record["date"], "seeds": list(seeds)})


@pytest.mark.nightly
@pytest.mark.parametrize("kind", KINDS)
def test_training_reproduces_the_committed_students(kind, protocol, trained_networks):
    """Retrains the first seed's student with its fixture's recorded settings; test accuracy within 0.5 pp."""
    _, students = protocol
    _, meta = students[kind, SEEDS[0]]
    teacher = trained_networks.checkpoint("googlenet")[0] if kind == "distilled" else None
    settings = {"temperature": meta["temperature"], "alpha": meta["alpha"]} if teacher is not None else {}
    result = train_network("student", trained_networks.dataset, meta["epochs"], seed=meta["seed"],
                           batch_size=meta["batch_size"], teacher=teacher, progress=False, **settings)
    assert abs(result.test_accuracy - meta["test_accuracy"]) <= 0.005, (result.test_accuracy, meta["test_accuracy"])

"""The sample users that ship in docs/users-sample.csv, and files of any size like them (the bulk
bench's 10,000 rows): deterministic, so the same command always writes the same file.

    python -m devstack sample-users --count 1000 > docs/users-sample.csv

Names are drawn from short lists with a fixed seed; each address is unique (the row number is in
it) and on example.com; about one user in three has a phone, one in fifty is an admin.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator

SEED = 22
FIRST = (
    "Ada", "Alan", "Barbara", "Brian", "Claude", "Dennis", "Donald", "Edsger", "Frances", "Grace", "Hedy",
    "Ivan", "Jean", "John", "Karen", "Ken", "Leslie", "Linus", "Lynn", "Margaret", "Mary", "Niklaus",
    "Radia", "Robin", "Shafi", "Sophie", "Tim", "Tony", "Vint", "Whitfield", "Yukihiro", "Zhou",
)  # fmt: skip
LAST = (
    "Lovelace", "Turing", "Liskov", "Kernighan", "Shannon", "Ritchie", "Knuth", "Dijkstra", "Allen", "Hopper",
    "Lamarr", "Sutherland", "Sammet", "McCarthy", "Jones", "Thompson", "Lamport", "Torvalds", "Conway",
    "Hamilton", "Kenyon", "Wirth", "Perlman", "Milner", "Goldwasser", "Wilson", "Berners-Lee", "Hoare", "Cerf",
    "Diffie", "Matsumoto", "Ping",
)  # fmt: skip
HEADER = ("name", "email", "phone", "role")


def rows(count: int, seed: int = SEED) -> Iterator[tuple[str, str, str, str]]:
    chooser = random.Random(seed)
    for number in range(1, count + 1):
        first, last = chooser.choice(FIRST), chooser.choice(LAST)
        email = f"{first}.{last}.{number}@example.com".lower()
        phone = f"+1415555{chooser.randrange(10_000):04d}" if chooser.random() < 1 / 3 else ""
        role = "admin" if chooser.random() < 1 / 50 else "member"
        yield f"{first} {last}", email, phone, role


def csv_text(count: int, seed: int = SEED) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows(count, seed))
    return out.getvalue()

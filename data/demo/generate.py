"""Write the offline demo's CoNLL sample: python data/demo/generate.py

The sentences are synthetic, written for this project from the templates and name lists below,
so they can ship with the repo (CoNLL-2003 itself cannot). Output is deterministic: rerunning
rewrites identical files. A fifth of every name list is held out of train, so validation and
test also measure names the model has never seen.
"""

import random
from pathlib import Path

SEED = 2003
SPLITS = {"train": 200, "valid": 20, "test": 20}  # documents per split
SENTENCES_PER_DOCUMENT = (3, 7)

PER = [
    "Anna Schmidt",
    "John Carter",
    "Maria Lopez",
    "Kenji Watanabe",
    "Olga Petrova",
    "David Okafor",
    "Sarah Connolly",
    "Pierre Dubois",
    "Li Wei",
    "Fatima Haddad",
    "Tom Berg",
    "Elena Rossi",
    "Michael O'Brien",
    "Priya Natarajan",
    "Jan de Vries",
    "Carlos Mendes",
    "Ingrid Larsen",
    "Ahmed Farouk",
    "Grace Kim",
    "Luca Bianchi",
    "Sofia Andersson",
    "Juan Carlos Ortega",
    "Hannah Weber",
    "Nikolai Ivanov",
    "Amara Diallo",
    "Robert Hughes",
    "Yuki Tanaka",
    "Miguel Santos",
    "Clara Hoffmann",
    "Samuel Adeyemi",
    "Eva Novak",
    "Omar Khalil",
    "Lucy Fitzgerald",
    "Pavel Horak",
    "Chen Jing",
    "Marta Kowalska",
    "George Papadopoulos",
    "Aisha Bello",
    "Henrik Nilsson",
    "Rosa Ferreira",
    "Obama",
    "Merkel",
    "Mandela",
    "Sanchez",
    "Tanaka",
    "Kowalski",
    "Dubois",
    "Haddad",
]
ORG = [
    "Reuters",
    "United Nations",
    "European Commission",
    "Northwind Bank",
    "Apex Motors",
    "Blue River Energy",
    "World Health Organization",
    "Silverline Airways",
    "Manchester United",
    "Real Madrid",
    "Bayern Munich",
    "Harbor Logistics",
    "Greenfield University",
    "Central Bank of Kenya",
    "Orion Software",
    "Tata Steel",
    "Nordic Telecom",
    "Red Cross",
    "Atlas Insurance",
    "Pacific Mining Corp",
    "Federal Reserve",
    "NATO",
    "Boston Celtics",
    "Stellar Foods",
    "Kestrel Pharmaceuticals",
    "National Rail",
    "Summit Capital",
    "Ministry of Finance",
    "Lakeside Hospital",
    "Crescent Media",
    "Ironbridge Construction",
    "Vega Labs",
]
LOC = [
    "Germany",
    "Paris",
    "Nairobi",
    "Tokyo",
    "Brazil",
    "New York",
    "Lake Victoria",
    "the Alps",
    "Cairo",
    "Sydney",
    "Canada",
    "Mumbai",
    "Buenos Aires",
    "Norway",
    "Lisbon",
    "South Africa",
    "Seoul",
    "Texas",
    "Warsaw",
    "the Danube",
    "Istanbul",
    "Chile",
    "Hong Kong",
    "Scotland",
    "Lagos",
    "Vienna",
    "Peru",
    "San Francisco",
    "Athens",
    "Iceland",
    "Montreal",
    "Kyoto",
]
MISC = [
    "German",
    "French",
    "Olympic Games",
    "World Cup",
    "Nobel Prize",
    "Japanese",
    "Brazilian",
    "Euro",
    "Tour de France",
    "Christmas",
    "Ramadan",
    "English",
    "Catholic",
    "Australian Open",
    "Oscars",
    "Kenyan",
    "Mexican",
    "Champions League",
    "Dutch",
    "Italian",
    "Canadian",
    "Super Bowl",
    "Chinese",
    "Cold War",
    "Indian",
    "Grammy Awards",
    "Nordic",
    "Swiss",
]
POOLS = {"PER": PER, "ORG": ORG, "LOC": LOC, "MISC": MISC}

TEMPLATES = [
    "{PER} said on Tuesday that {ORG} would open a new office in {LOC} .",
    "{ORG} shares rose 3 percent in {LOC} after the announcement .",
    "{PER} , the chief executive of {ORG} , resigned on Friday .",
    "The {MISC} team beat {ORG} 2-1 in {LOC} .",
    "{PER} won the {MISC} for the second time .",
    "Police in {LOC} arrested two men on Sunday , a spokesman said .",
    "{ORG} and {ORG} agreed to merge , {PER} told reporters .",
    "Heavy rain caused floods across {LOC} and {LOC} .",
    "{PER} will visit {LOC} next month to meet {PER} .",
    "The {MISC} government rejected the proposal from {ORG} .",
    "Prices fell sharply on Monday .",
    "{PER} scored twice as {ORG} won the {MISC} final .",
    "A {MISC} court in {LOC} sentenced {PER} to five years .",
    "{ORG} reported a profit of 12 million dollars for the quarter .",
    "Officials from {ORG} arrived in {LOC} on Wednesday .",
    "The talks in {LOC} ended without agreement , {PER} said .",
    "{PER} joined {ORG} from {ORG} last year .",
    "Thousands of {MISC} fans travelled to {LOC} for the {MISC} .",
    "Analysts expect {ORG} to cut jobs in {LOC} .",
    "{LOC} beat {LOC} 3-0 in a friendly match .",
    "The minister , {PER} , denied the report .",
    "{ORG} said it had no comment .",
    "Trading was quiet ahead of the holiday .",
    "{PER} ( {LOC} ) finished ahead of {PER} ( {LOC} ) .",
    "Exports from {LOC} to {LOC} grew by 8 percent .",
    "The {MISC} film star {PER} arrived in {LOC} .",
    "{ORG} , based in {LOC} , makes parts for cars .",
    "Results of the {MISC} on Saturday :",
    "{PER} told {ORG} that talks would resume in {LOC} .",
    "Both sides said they hoped for peace .",
    "{MISC} and {MISC} leaders met in {LOC} .",
    "{ORG} named {PER} as its new chairman .",
    "Shares in {ORG} closed lower in {LOC} .",
    "The storm moved north towards {LOC} overnight .",
    "{PER} , 34 , has played for {ORG} since 2019 .",
    "A spokeswoman for {ORG} in {LOC} confirmed the deal .",
]


def split_pool(names: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Shuffle a name list into (seen in train, held out for validation and test)."""
    names = names[:]
    rng.shuffle(names)
    cut = len(names) // 5
    return names[cut:], names[:cut]


def fill(template: str, pools: dict[str, list[str]], rng: random.Random) -> list[tuple[str, str]]:
    """Turn one template into (token, IOB2 tag) pairs."""
    rows = []
    for piece in template.split():
        entity_type = piece.strip("{}")
        if piece.startswith("{") and entity_type in pools:
            words = rng.choice(pools[entity_type]).split()
            rows += [(w, ("B-" if i == 0 else "I-") + entity_type) for i, w in enumerate(words)]
        else:
            rows.append((piece, "O"))
    return rows


def main() -> None:
    rng = random.Random(SEED)
    seen, held_out = {}, {}
    for entity_type, names in POOLS.items():
        seen[entity_type], held_out[entity_type] = split_pool(names, rng)
    for split, n_documents in SPLITS.items():
        # Validation and test mix held-out names with seen ones, like real news.
        pools = seen if split == "train" else {t: seen[t] + held_out[t] * 3 for t in POOLS}
        lines = []
        for _ in range(n_documents):
            lines += ["-DOCSTART- O", ""]
            for _ in range(rng.randint(*SENTENCES_PER_DOCUMENT)):
                lines += [f"{token} {tag}" for token, tag in fill(rng.choice(TEMPLATES), pools, rng)]
                lines.append("")
        Path(__file__).with_name(f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

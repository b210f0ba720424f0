"""Write the Chinese demo's character-level CoNLL sample: python data/demo-zh/generate.py

Like data/demo, synthetic: the sentences are made for this project from the templates and name
lists below, so they can ship with the repo. Each line holds one character and its tag, as the
Chinese NER data sets are written (MSRA, People's Daily); a blank line ends a sentence. Output is
deterministic: rerunning rewrites identical files.
"""

import random
from pathlib import Path

SEED = 30
SPLITS = {"train": 240, "valid": 30, "test": 30}  # sentences per split

PER = ["李明", "王芳", "张伟", "刘洋", "陈静", "赵磊", "孙丽", "周杰", "吴敏", "郑华", "黄晓", "林峰"]
ORG = ["北方银行", "星河科技", "东海航空", "明光医院", "长城电力", "华南大学", "青山集团", "蓝天食品"]
LOC = ["北京", "上海", "广州", "杭州", "成都", "武汉", "南京", "西安", "深圳", "重庆"]
TEMPLATES = [
    "{PER}在{LOC}工作。",
    "{ORG}的总部位于{LOC}。",
    "{PER}昨天访问了{ORG}。",
    "{LOC}今天的天气很好。",
    "{PER}说{ORG}将在{LOC}开设新办公室。",
    "{PER}表示，{ORG}今年在{LOC}增长很快。",
    "{ORG}宣布{PER}担任新的负责人。",
    "我们下个月去{LOC}看望{PER}。",
    "{PER}和{PER}一起离开了{LOC}。",
    "今年的会议由{ORG}在{LOC}举办。",
]


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    """One sentence from a random template: (character, IOB2 tag) pairs."""
    template, pairs = rng.choice(TEMPLATES), []
    for i, part in enumerate(template.replace("}", "{").split("{")):
        if i % 2:
            name = rng.choice({"PER": PER, "ORG": ORG, "LOC": LOC}[part])
            pairs += [(character, ("B-" if j == 0 else "I-") + part) for j, character in enumerate(name)]
        else:
            pairs += [(character, "O") for character in part]
    return pairs


def main() -> None:
    rng = random.Random(SEED)
    here = Path(__file__).parent
    for split, count in SPLITS.items():
        blocks = ["".join(f"{character} {tag}\n" for character, tag in sentence(rng)) for _ in range(count)]
        (here / f"{split}.txt").write_text("\n".join(blocks), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Simple general text — everyday stories and short news items in English and Chinese.

The offline stand-in for the report's stage-1 general corpus (synthetic textbooks and Chinese news); it gives
the embedded default a stage of non-math text with the numbers and units that everyday writing uses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from minimath.data.synth.base import DocumentGenerator, check_subset

LANGUAGES = ("en", "zh")
EN = {
    "names": ["Tom", "Lily", "Sam", "Mia", "Ben", "Ana", "Leo", "Zoe"],
    "places": ["the park", "the library", "the market", "the river", "the museum", "the school garden"],
    "activities": [
        "read a book about stars",
        "planted three small trees",
        "painted a picture of the sky",
        "counted the birds on the bridge",
        "bought fresh bread",
        "played chess under a tree",
    ],
    "feelings": ["happy", "tired but proud", "curious", "calm", "excited"],
    "cities": ["Riverton", "Hillview", "Lakeside", "Maple Town", "Stonebridge"],
    "events": ["book fair", "science festival", "spring market", "music week", "robot contest"],
}
ZH = {
    "names": ["小明", "小红", "小刚", "小丽", "小军", "小芳"],
    "places": ["公园", "图书馆", "菜市场", "河边", "博物馆", "学校的花园"],
    "activities": [
        "读了一本关于星星的书",
        "种了三棵小树",
        "画了一幅天空的画",
        "数了桥上的小鸟",
        "买了新鲜的面包",
        "在树下下象棋",
    ],
    "feelings": ["很开心", "有点累但很自豪", "充满好奇", "很平静", "非常兴奋"],
    "cities": ["江城", "山景市", "湖畔镇", "枫林镇", "石桥市"],
    "events": ["书展", "科技节", "春季集市", "音乐周", "机器人比赛"],
}


def _story(rng: random.Random, lang: str) -> str:
    w = ZH if lang == "zh" else EN
    a, b = rng.sample(w["names"], 2)
    place, act, feel = rng.choice(w["places"]), rng.choice(w["activities"]), rng.choice(w["feelings"])
    hour = rng.randint(7, 17)
    if lang == "zh":
        return f"星期天上午{hour}点，{a}和{b}一起去了{place}。他们{act}。回家的路上，{a}觉得{feel}。"
    return f"On Sunday at {hour} o'clock, {a} and {b} went to {place}. They {act}. On the way home, {a} felt {feel}."


def _news(rng: random.Random, lang: str) -> str:
    w = ZH if lang == "zh" else EN
    city, event = rng.choice(w["cities"]), rng.choice(w["events"])
    this_year = rng.randint(1000, 90000)
    last_year = rng.randint(1000, 90000)
    days = rng.randint(2, 10)
    trend = (
        ("多" if this_year > last_year else "少") if lang == "zh" else ("more" if this_year > last_year else "fewer")
    )
    diff = abs(this_year - last_year)
    if lang == "zh":
        return (
            f"本报讯：{city}今年的{event}共举办{days}天，吸引了{this_year}名观众，"
            f"比去年{trend}了{diff}人。主办方表示，明年将继续举办。"
        )
    return (
        f"{city} News: this year's {event} ran for {days} days and drew {this_year} visitors, {diff} {trend} than "
        f"last year. The organisers said the event will return next year."
    )


@dataclass
class GeneralTextSource(DocumentGenerator):
    languages: tuple[str, ...] = LANGUAGES
    paragraphs_per_doc: int = 4

    def __post_init__(self):
        self.languages = check_subset("languages", self.languages, LANGUAGES)

    def document(self, rng: random.Random) -> str:
        lang = rng.choice(self.languages)
        return "\n".join(rng.choice((_story, _news))(rng, lang) for _ in range(self.paragraphs_per_doc))

"""``mini_ner``: an embedded, constructed NER set for the mini protocol — a mechanics check, not a benchmark.

No package on the registries this suite may use ships an NER corpus with a licence that allows embedding it, so the
mini set is **constructed**, by a documented procedure, from text written for this module (no copied corpus):

1. 36 sentence templates in news style (lower case: the mini backbone is uncased). Slots name an entity type
   (``{PER}``, ``{ORG}``, ``{LOC}``, ``{MISC}``) or ``{ANY}``: a slot that takes an entity of any type, so that the
   context alone does not give the type away and the model must recognise the entity itself;
2. entity lists of the four CoNLL types (people, organisations, places, nationalities / events / languages),
   46–48 names each, every list split at random (seed ``SEED``) into three disjoint thirds for train, dev and test:
   **no test entity is ever seen in training**, so the set measures generalisation to new names, which is where
   pre-trained knowledge (and Co-Tuning's masked-LM prior) can matter;
3. sentences drawn with a fixed seed: a template, then an entity of the slot's type (``{ANY}``: a type uniformly,
   then an entity) from the part's third. Labels are exact by construction (IOB2, CoNLL's label set).

Sizes: 600 train, 200 dev, 400 test sentences. Entity F1 on it says whether the NER pipeline learns and how methods
compare at CPU scale; it is **never comparable to CoNLL-2003 F1** and reports say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transferlab.data.base import DatasetSource, register_dataset
from transferlab.data.text import CONLL_LABELS, token_source

SEED = 2020
SIZES = {"train": 600, "dev": 200, "test": 400}
MAX_LENGTH = 48  # sub-tokens incl. [CLS]/[SEP]; the longest generated sentence needs fewer

ENTITIES = {
    "PER": """angela merkel|nelson mandela|serena williams|boris yeltsin|jacques chirac|helmut kohl|kofi annan|
        bill clinton|tony blair|yasser arafat|pete sampras|steffi graf|michael schumacher|john major|lionel jospin|
        benjamin netanyahu|alberto fujimori|romano prodi|martina hingis|andre agassi|gerhard schroeder|
        boris becker|carlos menem|hillary clinton|newt gingrich|al gore|bob dole|jean chretien|ernesto zedillo|
        vaclav havel|lech walesa|ruud gullit|diego maradona|mike tyson|evander holyfield|greg norman|nick faldo|
        sachin tendulkar|brian lara|shane warne|wasim akram|dennis bergkamp|alan shearer|eric cantona|
        monica seles|michael johnson""",
    "ORG": """united nations|reuters|microsoft|toyota|real madrid|red cross|world bank|nato|european union|
        general motors|ajax amsterdam|manchester united|bundesbank|federal reserve|ibm|intel|boeing|airbus|
        nasdaq|interpol|greenpeace|unicef|opec|volkswagen|deutsche bank|barclays|nestle|siemens|fiat|renault|
        bayern munich|inter milan|juventus|liverpool|chelsea|arsenal|celtic|benfica|porto|anderlecht|
        amnesty international|world trade organisation|international monetary fund|labour party|
        conservative party|supreme court|parliament""",
    "LOC": """germany|france|london|paris|tokyo|moscow|new york|brazil|kenya|australia|china|india|canada|mexico|
        egypt|israel|jerusalem|beijing|bonn|berlin|madrid|rome|vienna|geneva|zurich|sydney|melbourne|toronto|
        chicago|washington|los angeles|cairo|nairobi|lagos|johannesburg|buenos aires|lima|bogota|manila|jakarta|
        bangkok|seoul|hong kong|singapore|dublin|belfast|scotland""",
    "MISC": """german|french|british|american|russian|chinese|japanese|italian|spanish|dutch|israeli|palestinian|
        olympic games|world cup|euro 96|wimbledon|tour de france|nobel prize|grand prix|super bowl|english|
        arabic|catholic|muslim|christian|jewish|iraqi|iranian|kurdish|serbian|croatian|bosnian|mexican|
        brazilian|canadian|australian|belgian|swiss|swedish|norwegian|danish|finnish|polish|czech|
        hungarian|turkish""",
}
TEMPLATES = """\
{PER} met {PER} in {LOC} on tuesday .
{ORG} shares rose 3 percent in {LOC} trading .
the {MISC} delegation arrived in {LOC} late on sunday .
{ANY} said the talks would continue next week .
officials from {ANY} declined to comment on the report .
{PER} , who joined {ORG} in 1998 , will lead the team .
{ORG} said it would cut 2,000 jobs in {LOC} .
police in {LOC} arrested two men on friday , a spokesman said .
{PER} won the {MISC} title after beating {PER} in three sets .
the {MISC} government welcomed the decision by {ORG} .
{ANY} has been criticised for its handling of the crisis .
{PER} told reporters in {LOC} that {ORG} would not change its plans .
a {MISC} company agreed to buy a stake in {ORG} .
{LOC} beat {LOC} 2 - 1 in a friendly match .
fighting broke out near {LOC} , witnesses told {ORG} .
{ANY} is expected to announce the results on monday .
the visit by {PER} to {LOC} was cancelled .
{ORG} chairman {PER} resigned after the vote .
{MISC} troops left {LOC} early on wednesday .
talks between {ANY} and {ANY} ended without agreement .
{PER} scored twice as {ORG} won in {LOC} .
the {MISC} open was delayed by rain in {LOC} .
inflation in {LOC} fell to 2.1 percent in may , {ORG} said .
{ANY} rejected the offer on thursday .
{PER} will fly to {LOC} for the {MISC} summit .
{ORG} reported a profit of 450 million dollars .
prices of {MISC} bonds eased in quiet trade .
the minister met {PER} and leaders of {ORG} .
{ANY} was not available for comment .
heavy rain hit {LOC} and parts of {LOC} overnight .
{PER} , the {MISC} champion , pulled out of the race .
{ORG} and {ORG} signed a trade accord in {LOC} .
the report by {ANY} was published on saturday .
{PER} denied the charges in a statement .
{MISC} fans celebrated in the streets of {LOC} .
a spokesman for {ANY} confirmed the meeting ."""
TYPES = ("PER", "ORG", "LOC", "MISC")


def entity_pools(seed: int = SEED) -> dict[str, dict[str, list[str]]]:
    """part → type → entity names: each type's list split at random into disjoint thirds (train, dev, test)."""
    rng = np.random.default_rng(seed)
    pools: dict[str, dict[str, list[str]]] = {p: {} for p in SIZES}
    for t in TYPES:
        names = [n.strip() for n in ENTITIES[t].split("|")]
        order = rng.permutation(len(names))
        thirds = np.array_split(order, 3)
        for part, idx in zip(SIZES, thirds):
            pools[part][t] = [names[i] for i in idx]
    return pools


def generate(part: str, n: int, pools: dict[str, list[str]], rng: np.random.Generator):
    """``n`` sentences (words, IOB2 tags) from the templates with entities of ``pools`` (type → names)."""
    templates = TEMPLATES.splitlines()
    sentences, tags = [], []
    for _ in range(n):
        words, labels = [], []
        for w in templates[rng.integers(len(templates))].split():
            if w.startswith("{") and w.endswith("}"):
                t = w[1:-1]
                t = TYPES[rng.integers(len(TYPES))] if t == "ANY" else t
                name = pools[t][rng.integers(len(pools[t]))].split()
                words += name
                labels += [f"B-{t}"] + [f"I-{t}"] * (len(name) - 1)
            else:
                words.append(w)
                labels.append("O")
        sentences.append(words)
        tags.append(labels)
    return sentences, tags


@register_dataset("mini_ner", task="token_classification")
def mini_ner(root: Path) -> DatasetSource:
    """The constructed mini NER set (see the module docstring); ``root`` is not read."""
    pools = entity_pools()
    rng = np.random.default_rng(SEED)
    parts = {p: generate(p, n, pools[p], rng) for p, n in SIZES.items()}
    info = {"source": "constructed by transferlab.data.mini_ner (templates and entity lists written for it)",
            "seed": SEED, "sizes": SIZES, "note": "a mechanics check; never comparable to CoNLL-2003 F1"}  # fmt: skip
    return token_source("mini_ner", CONLL_LABELS, parts, "all-MiniLM-L6-v2", MAX_LENGTH, info)


__all__ = ["ENTITIES", "SIZES", "TEMPLATES", "entity_pools", "generate", "mini_ner"]

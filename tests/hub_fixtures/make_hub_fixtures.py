"""Write the course-written Hub fixtures: for every Hub dataset the course loads, a few rows in the dataset's exact
Hub schema (split names and order, column names and order, features) that reproduce each quirk a loader handles.

Every row below was written for this course; none is copied from a dataset. The schema (not the text) follows the
datasets' cards, and tests/test_hub_mirror.py checks it equal to ../shared/hub_samples/*/schema.json where those
real samples exist. The layout is the Hub mirror's (data/README.md): <org>__<name>[__<config>]/schema.json and one
<split>.jsonl per split (ASCII-escaped JSON, one object per line). `splits` records the sizes ON THE HUB, as the
samples' schema.json does; the files hold the few rows written here.

Run: python tests/hub_fixtures/make_hub_fixtures.py   (UltraFeedback: make_ultrafeedback_fixture.py; ARC-Easy is
built at test time from its asset: tests/hub_mirror_arc.py)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRITTEN = "written for this course by tests/hub_fixtures/make_hub_fixtures.py (no dataset text)"


def write(folder: str, schema: dict, splits: dict[str, list[dict]], quirks: list[str]) -> None:
    out = HERE / folder
    out.mkdir(parents=True, exist_ok=True)
    for p in out.glob("*.jsonl"):
        p.unlink()
    order = schema["column_order"]
    assert list(splits) == list(schema["splits"]), (folder, list(splits))
    for name, rows in splits.items():
        for r in rows:
            assert list(r) == order, (folder, name, list(r))
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=True) + "\n" for r in rows),
                                           encoding="utf-8", newline="\n")
    full = {**schema, "sample_source": WRITTEN, "rows_here": {n: len(r) for n, r in splits.items()},
            "quirks": quirks}
    (out / "schema.json").write_text(json.dumps(full, indent=2, ensure_ascii=True) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- rotten_tomatoes (sentiment)
RT_SUBJECTS = ["the lead performance", "this small-town drama", "the script", "the second half", "the director's eye",
               "the whole cast", "the soundtrack", "this remake", "the final act", "the comic timing",
               "the photography", "this animated feature", "the love story", "the dialogue", "the villain",
               "the pacing", "this sequel", "the editing", "the premise", "the ending"]
RT_POS = ["is warm , funny and surprisingly wise", "earns every one of its quiet moments",
          "makes an old story feel new again", "is a pleasure from start to finish",
          "lands with real heart and no cheap tricks", "keeps you smiling long after the credits"]
RT_NEG = ["is flat , slow and oddly joyless", "never finds a reason to exist",
          "wastes a good idea on lazy jokes", "drags on well past its welcome",
          "feels like a first draft nobody fixed", "is loud without ever being exciting"]


def rt_rows(start: int, n: int, phrases: list[str], label: int) -> list[dict]:
    return [{"text": f"{RT_SUBJECTS[(start + i) % 20]} {phrases[(start + i) % 6]} .", "label": label}
            for i in range(n)]


def rotten_tomatoes() -> None:
    # Hub order within a split: every positive row, then every negative one (never take the first rows).
    train = rt_rows(0, 20, RT_POS, 1) + rt_rows(3, 20, RT_NEG, 0)
    train[5]["text"] = "a tender , clever film \x97 a few scenes too long , but worth it ."  # cp1252 dash read as latin-1
    train[25]["text"] = "the jokes run out early \x96 and so does the patience ."
    train[7]["text"] = "a line break inside a string:\u2028 still one record , and still a fine film ."
    train[27]["text"] = "next line\x85 and paragraph\u2029 separators inside one dull snippet ."
    # Different subjects/phrase offsets per split, so no text occurs in two splits.
    validation = [{"text": f"as a {w} , it {p} .", "label": 1} for w, p in
                  [("comedy", RT_POS[0]), ("thriller", RT_POS[1]), ("musical", RT_POS[2]),
                   ("western", RT_POS[3]), ("documentary", RT_POS[4])]] + \
                 [{"text": f"as a {w} , it {p} .", "label": 0} for w, p in
                  [("comedy", RT_NEG[0]), ("thriller", RT_NEG[1]), ("musical", RT_NEG[2]),
                   ("western", RT_NEG[3]), ("documentary", RT_NEG[4])]]
    kinds = ["heist film", "coming-of-age story", "period piece", "road movie", "courtroom drama",
             "ghost story", "war film", "sports drama", "space opera", "family comedy"]
    test = [{"text": f"for a {k} , this one {RT_POS[i % 6]} .", "label": 1} for i, k in enumerate(kinds)] + \
           [{"text": f"for a {k} , this one {RT_NEG[(i + 2) % 6]} .", "label": 0} for i, k in enumerate(kinds)]
    write("cornell-movie-review-data__rotten_tomatoes", {
        "hub_id": "cornell-movie-review-data/rotten_tomatoes", "config": None,
        "splits": {"train": 8530, "validation": 1066, "test": 1066},
        "features": {"text": "Value('string')", "label": "ClassLabel(names=['neg', 'pos'])"},
        "column_order": ["text", "label"], "licence": "unknown (dataset card YAML: license: unknown)",
    }, {"train": train, "validation": validation, "test": test}, [
        "label is the ClassLabel index (0 neg, 1 pos), as load_dataset returns it",
        "within each split all positive rows come first, then the negative ones (sample, never take the first rows)",
        "lower-cased, tokenised text with spaces around punctuation",
        "C1 characters (U+0097, U+0096: cp1252 dashes decoded as latin-1) and U+2028, U+2029, U+0085 inside strings",
    ])


# ---------------------------------------------------------------- wikitext (lm_text)
def wiki(title: str, sections: list[tuple[str | None, list[str]]]) -> list[str]:
    """WikiText's raw rows: '' between blocks, ' = Title = \\n', ' = = Section = = \\n', ' paragraph \\n'."""
    rows = ["", f" = {title} = \n", ""]
    for head, paras in sections:
        if head:
            rows += [f" = = {head} = = \n", ""]
        for p in paras:
            rows += [f" {p} \n", ""]
    return rows


TEST_ARTICLES = [
    wiki("Harrow Point Lighthouse", [
        (None, ["Harrow Point Lighthouse is a disused lighthouse on a low headland at the mouth of a tidal estuary . "
                "It was built in 1861 to replace a wooden beacon that had burned down , and it guided coastal traffic "
                "for just over a century before an automatic light on a nearby buoy made it unnecessary ."]),
        ("Construction", ["The tower is 21 metres ( 69 ft ) tall and built of local grey stone , with walls about "
                          "1 @.@ 5 metres thick at the base . The builders brought the stone by barge because the "
                          "road to the headland was often flooded at high tide . Work took three summers , as the "
                          "exposed site could not be worked in winter storms .",
                          "The lantern room held an oil lamp and a set of glass prisms that turned on a clockwork "
                          "mechanism . The keeper had to wind the clockwork every four hours through the night , and "
                          "a log book records each winding , the weather , and every ship that passed ."]),
        ("Keepers", ["For most of its working life the light was kept by two families who lived in cottages at the "
                     "foot of the tower . Children from the cottages walked 6 km ( 3 @.@ 7 mi ) to the nearest "
                     "school , and in bad weather they stayed with relatives in the village for weeks at a time .",
                     "The last keeper left in 1964 . The cottages were later sold , and the tower itself was "
                     "restored by volunteers in the 1990s ; it now opens to visitors on summer weekends ."]),
    ]),
    wiki("Amberley Canal", [
        (None, ["The Amberley Canal is a short canal , 14 km ( 8 @.@ 7 mi ) long , that once linked a market town "
                "to a navigable river . It carried coal , grain and building stone for about seventy years , until "
                "a railway line along the same valley took most of its trade ."]),
        ("History", ["The canal was proposed by a group of local merchants who wanted cheaper transport for coal . "
                     "Digging began in 1794 and was finished in 1799 , slightly over budget , after a dispute with a "
                     "landowner forced the route to bend around his estate .",
                     "Traffic peaked in the 1830s , when more than forty boats used the canal each week . Most were "
                     "pulled by horses along a towpath on the northern bank ; a few were moved by hand through the "
                     "short tunnel near the summit , where there was no towpath at all ."]),
        ("Restoration", ["After the last commercial boat passed in 1871 , the locks decayed and parts of the channel "
                         "were filled in . A restoration society formed in 1972 has since reopened 5 km of the canal "
                         "for small boats , rebuilt two locks , and cleared the tunnel , which is now home to a "
                         "colony of bats that is protected by law ."]),
    ]),
]
TRAIN_ARTICLES = [
    wiki("Millbrook Viaduct", [
        (None, ["Millbrook Viaduct is a brick railway viaduct of nineteen arches that carries a branch line across "
                "a shallow valley . It was designed by a little @-@ known engineer , completed in 1872 , and is one "
                "of the longest brick structures in the region ."]),
        ("Design", ["Each arch spans 12 metres . The piers were sunk on timber piles because the valley floor is "
                    "soft clay , and two of them began to tilt during construction ; they were braced with iron "
                    "ties that can still be seen today .",
                    "About 4 @,@ 000 @,@ 000 bricks were used , most of them made in a temporary brickworks set up "
                    "beside the site \u2013 a common practice for large works far from a town ."]),
    ]),
    wiki("Festival of Lanterns ( Oakridge )", [
        (None, ["The Festival of Lanterns is an annual autumn event in the town of Oakridge , in which residents "
                "carry paper lanterns through the old streets to the river . It began in 1952 as a school project "
                "and has grown into the town 's largest public gathering ."]),
        ("Organisation", ["A committee of volunteers plans the route and runs workshops where children build their "
                          "lanterns from willow sticks and tissue paper . Since 2010 electric lights have replaced "
                          "candles , after a lantern set fire to a market stall ."]),
    ]),
]
VALIDATION_ARTICLES = [
    wiki("Corran Moss", [
        (None, ["Corran Moss is a raised peat bog of about 300 hectares . Its surface rises several metres above "
                "the surrounding farmland , and it is one of the few bogs in the area that was never cut for fuel .",
                "The bog supports sundews , bog cotton and several rare mosses . A boardwalk crosses its southern "
                "edge so that visitors can see the plants without trampling them ."]),
    ]),
]


def wikitext() -> None:
    flat = lambda arts: [{"text": t} for a in arts for t in a]  # noqa: E731
    write("Salesforce__wikitext__wikitext-2-raw-v1", {
        "hub_id": "Salesforce/wikitext", "config": "wikitext-2-raw-v1",
        "splits": {"test": 4358, "train": 36718, "validation": 3760},
        "features": {"text": "Value('string')"}, "column_order": ["text"],
        "licence": "cc-by-sa-3.0 and gfdl (card YAML); the card's prose says CC BY-SA 4.0",
    }, {"test": flat(TEST_ARTICLES), "train": flat(TRAIN_ARTICLES), "validation": flat(VALIDATION_ARTICLES)}, [
        "splits in load_dataset's order: test, train, validation",
        "one row per raw line: blank rows are '' (dropped by the loader, counted); other rows keep a leading space "
        "and a trailing ' \\n'",
        "headings ' = Title = ', ' = = Section = = '; tokenised text with '@-@', '@,@', '@.@'; an en dash (non-ASCII)",
    ])


# ---------------------------------------------------------------- medical_abstracts (medical)
MED = {  # condition_label (1-based, as on the Hub) -> (conditions, findings)
    1: (["a rare soft-tissue sarcoma of the thigh", "early-stage breast carcinoma", "childhood leukaemia",
         "a benign tumour of the salivary gland", "metastatic melanoma", "small-cell lung carcinoma"],
        "tumour size fell after treatment and no new lesions appeared during follow-up"),
    2: (["chronic inflammation of the small bowel", "bleeding gastric ulcers", "gallstones in older adults",
         "acute inflammation of the pancreas", "reflux of stomach acid into the oesophagus", "liver cirrhosis"],
        "abdominal pain and the need for repeat endoscopy were both reduced"),
    3: (["recurrent migraine with aura", "early Parkinson's disease", "multiple sclerosis relapses",
         "peripheral nerve injury of the hand", "focal epilepsy in adults", "post-traumatic headache"],
        "scores on standard neurological scales improved and seizures or attacks became less frequent"),
    4: (["unstable angina", "high blood pressure in pregnancy", "atrial fibrillation after surgery",
         "narrowing of the carotid artery", "heart failure with reduced ejection fraction", "deep vein thrombosis"],
        "blood pressure, heart rhythm or blood flow returned closer to normal in most patients"),
    5: (["unexplained fever in returning travellers", "severe dehydration in infants", "shock after major burns",
         "low blood sodium in hospital patients", "unintended weight loss in the elderly", "sepsis of unknown source"],
        "the usual laboratory markers returned to normal ranges within days"),
}
MED_DESIGNS = ["We followed {n} patients with {c} for two years.",
               "In a randomised trial, {n} patients with {c} received either the new regimen or standard care.",
               "This retrospective review covers {n} consecutive cases of {c} treated at one centre."]


def med_row(label: int, i: int, truncated: bool = False) -> dict:
    conds, finding = MED[label]
    c = conds[i]
    body = (f"{c[0].upper()}{c[1:]}: outcomes of a course-written study. "
            + MED_DESIGNS[i % 3].format(n=20 + 7 * i + label, c=c)
            + f" In the treated group {finding}. Side effects were mild and short-lived. ")
    if truncated:
        body += "Further subgroup results are described in the full text (ABSTRACT TRUNCATED AT 400 WORDS). "
    return {"condition_label": label, "medical_abstract": body}


def medical_abstracts() -> None:
    train = [med_row(label, i, truncated=(label == 3 and i == 1)) for i in range(4) for label in (5, 1, 2, 4, 3)]
    # The corpus holds abstracts that occur twice with different labels; one such pair (both in train).
    train.append({"condition_label": 4, "medical_abstract": train[0]["medical_abstract"]})
    test = [med_row(label, i) for label in (1, 2, 3, 4, 5) for i in (4, 5)]
    write("TimSchopf__medical_abstracts", {
        "hub_id": "TimSchopf/medical_abstracts", "config": None, "splits": {"train": 11550, "test": 2888},
        "features": {"condition_label": "Value('int64')", "medical_abstract": "Value('string')"},
        "column_order": ["condition_label", "medical_abstract"],
        "licence": "cc-by-sa-3.0 (card YAML; the source repository's LICENSE is CC BY-SA 3.0 Unported too)",
    }, {"train": train, "test": test}, [
        "condition_label is a plain int64 coded 1..5 (not a ClassLabel, not 0-based); the label column comes first",
        "every abstract starts with its title and ends with a trailing space; one ends "
        "'(ABSTRACT TRUNCATED AT 400 WORDS). '",
        "one abstract occurs twice in train with different labels, as in the corpus",
        "train only and test only: no validation split",
    ])


# ---------------------------------------------------------------- databricks-dolly-15k (instructions)
def dolly_rows() -> list[dict]:
    r = lambda ins, ctx, resp, cat: {"instruction": ins, "context": ctx, "response": resp, "category": cat}  # noqa: E731
    p1 = ("The Amberley Canal was dug between 1794 and 1799 to carry coal to a market town. Traffic peaked in the "
          "1830s with more than forty boats a week, and a railway took most of its trade by 1871.")
    p2 = ("Harrow Point Lighthouse is 21 metres tall and was built of local grey stone in 1861. Its last keeper "
          "left in 1964, and volunteers restored the tower in the 1990s.")
    p3 = ("The Festival of Lanterns began in 1952 as a school project in Oakridge. Children build lanterns from "
          "willow sticks and tissue paper, and since 2010 electric lights have replaced candles.")
    return [
        r("What is the boiling point of water at sea level in Celsius?", "", "100 degrees Celsius.", "open_qa"),
        r("Why do onions make people cry?", "", "Cutting an onion releases a gas that irritates the eyes, which "
          "then make tears to wash it away.", "open_qa"),
        r("What does a barometer measure?", "", "Air pressure.", "open_qa"),
        r("Who wrote the play Romeo and Juliet?", "", "William Shakespeare.", "open_qa"),
        r("How many legs does a spider have?", "", "Eight.", "open_qa"),
        r("Should I learn to type with ten fingers?", "", "It takes a few weeks of practice, but touch typing "
          "usually makes you faster and lets you keep your eyes on the screen.", "general_qa"),
        r("Is it better to rent or buy a bicycle for a month-long trip?", "", "For one month renting is usually "
          "cheaper and includes repairs; buy only if you will keep riding afterwards.", "general_qa"),
        r("How can I sleep better?", "", "Keep a regular bedtime, avoid screens for an hour before bed, and keep "
          "the room dark and cool.", "general_qa"),
        r("What makes a good team meeting?", "", "A short agenda sent in advance, a clear owner for each decision, "
          "and notes shared afterwards.", "general_qa"),
        r("Why do people keep houseplants?", "", "They like the look of them, caring for them is relaxing, and "
          "some people find they make a room feel fresher.", "general_qa"),
        r("Classify each as a fruit or a vegetable: apple, carrot, pear, leek", "", "Fruit: apple, pear.\n"
          "Vegetable: carrot, leek.", "classification"),
        r("Which of these are mammals: whale, shark, bat, trout?", "", "The whale and the bat are mammals; the "
          "shark and the trout are fish.", "classification"),
        r("Sort these into hot or cold drinks: tea, lemonade, cocoa, iced coffee", "", "Hot: tea, cocoa. Cold: "
          "lemonade, iced coffee.", "classification"),
        r("Is each of these a string or a percussion instrument: violin, drum, cello, triangle?", "",
          "String: violin, cello. Percussion: drum, triangle.", "classification"),
        r("Tell me which are planets: Mars, the Moon, Venus, the Sun", "", "Mars and Venus are planets; the Moon "
          "is a moon and the Sun is a star.", "classification"),
        r("When was the Amberley Canal finished?", p1, "It was finished in 1799.", "closed_qa"),
        r("What replaced most of the canal's trade?", p1, "A railway line.", "closed_qa"),
        r("How tall is Harrow Point Lighthouse?", p2, "It is 21 metres tall.", "closed_qa"),
        r("When did the last keeper leave?", p2, "In 1964.", "closed_qa"),
        r("What are the lanterns made of?", p3, "Willow sticks and tissue paper.", "closed_qa"),
        r("Give me five ideas for a rainy Sunday.", "", "1. Bake bread\n2. Start a jigsaw puzzle\n3. Visit a "
          "museum\n4. Write letters to friends\n5. Watch an old film series", "brainstorming"),
        r("List some ways to save water at home.", "", "Take shorter showers, fix dripping taps, run the "
          "dishwasher only when full, and water the garden in the evening.", "brainstorming"),
        r("What could I cook with eggs, spinach and cheese?", "", "An omelette, a frittata, a savoury pie, or "
          "baked eggs on a bed of spinach.", "brainstorming"),
        r("Suggest names for a grey kitten.", "", "Smoky, Pebble, Ash, Misty, Slate.", "brainstorming"),
        r("What are good first steps for learning to draw?", "", "Draw simple objects every day, learn basic "
          "shapes and shading, and copy drawings you admire.", "brainstorming"),
        r("Extract the years mentioned in the text.", p1, "1794, 1799, 1830s, 1871", "information_extraction"),
        r("List the materials mentioned in the passage.", p2, "Local grey stone.", "information_extraction"),
        r("From the text, list who builds the lanterns and what with.", p3, "Children build them from willow "
          "sticks and tissue paper.", "information_extraction"),
        r("Extract the numbers from the passage with what they count.", p1, "Forty: boats a week in the 1830s.",
          "information_extraction"),
        r("What dates does the passage give, and for what?", p2, "1861: the lighthouse was built. 1964: the last "
          "keeper left. 1990s: the tower was restored.", "information_extraction"),
        r("Summarise the history of the canal in one sentence.", p1, "Dug in the 1790s for coal, the canal was busy "
          "in the 1830s and lost its trade to a railway by 1871.", "summarization"),
        r("Summarise this passage.", p2, "A stone lighthouse from 1861, kept until 1964 and restored by "
          "volunteers.", "summarization"),
        r("Give a short summary of the festival.", p3, "A lantern walk that began as a school project in 1952 and "
          "now uses electric lights.", "summarization"),
        r("Summarise the text for a child.", p1, "Long ago people dug a water road for boats to carry coal, until "
          "trains did the job instead.", "summarization"),
        r("In two sentences, what is this about?", p3, "It is about a yearly lantern festival in Oakridge. Children "
          "make the lanterns and the lights are now electric.", "summarization"),
        r("Write a haiku about the first snow.", "", "Soft white on the roofs\nthe street forgets its footsteps\n"
          "one crow, then silence", "creative_writing"),
        r("Write a two-sentence story about a lost key.", "", "Maya searched the whole house for her key. She "
          "found it at last in the door, where it had been all day.", "creative_writing"),
        r("\u00c9cris une courte phrase sur la mer.", "", "La mer respire doucement sous la lune.",
          "creative_writing"),
        r("Write a limerick about a cat who loves boxes.", "", "A cat with a passion for boxes\nignored all her "
          "toys and her sockses;\nshe'd squeeze in a crate,\nstay in it till late,\nand nap there as snug as a "
          "fox is.", "creative_writing"),
        r("Describe a busy market in three sentences.", "", "Stalls spill over with oranges and bright scarves. "
          "Sellers call out prices over the noise of carts.  Somewhere a radio plays an old song.",
          "creative_writing"),
    ]


def dolly() -> None:
    write("databricks__databricks-dolly-15k", {
        "hub_id": "databricks/databricks-dolly-15k", "config": None, "splits": {"train": 15011},
        "features": {"instruction": "Value('string')", "context": "Value('string')",
                     "response": "Value('string')", "category": "Value('string')"},
        "column_order": ["instruction", "context", "response", "category"], "licence": "cc-by-sa-3.0",
    }, {"train": dolly_rows()}, [
        "one split, train: the course makes a seeded 5% test split",
        "all eight categories, 5 rows each: open_qa, general_qa, classification, closed_qa, brainstorming, "
        "information_extraction, summarization, creative_writing (general_qa is missing from the offline file)",
        "context is '' (not null) where there is no reference text; closed_qa, information_extraction and "
        "summarization rows carry one",
        "responses with '\\n' lists, a double space, and a row in French",
    ])


# ---------------------------------------------------------------- alpaca (instructions, hub("alpaca"))
ALPACA_PLAIN = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
                "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n{output}")
ALPACA_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
                "### Input:\n{input}\n\n### Response:\n{output}")


def alpaca() -> None:
    pairs = [
        ("Name three primary colours.", "", "Red, blue and yellow."),
        ("Rewrite the sentence in the past tense.", "She walks to the station.", "She walked to the station."),
        ("Give two tips for a job interview.", "", "1. Research the company beforehand.\n2. Prepare short examples "
         "of your past work."),
        ("Translate the phrase into Spanish.", "Good night", "Buenas noches."),
        ("Describe the colour of the sky to someone who cannot see.", "<No Input>", "It feels like cool water on a "
         "warm day: calm, open and fresh."),
        ("Write a title for a blog post about saving money.", "", ""),  # an empty output, as two Hub rows have
        ("Calculate the area of a rectangle.", "length 4 m, width 3 m", "The area is 4 x 3 = 12 square metres."),
        ("Classify the animal as a bird or a fish.", "Penguin", "A penguin is a bird."),
        ("Suggest a healthy breakfast.", "", "Porridge with fruit and a handful of nuts."),
        ("Find the odd one out.", "apple, banana, carrot, cherry", ""),  # the second empty output
        ("Explain what a noun is in one sentence.", "", "A noun is a word that names a person, place, thing or idea."),
        ("Summarise the text in five words.", "The meeting was moved from Monday to Thursday because the room "
         "was booked.", "Meeting moved to Thursday, room booked."),
    ]
    rows = [{"instruction": i, "input": x, "output": o,
             "text": (ALPACA_INPUT if x else ALPACA_PLAIN).format(instruction=i, input=x, output=o)}
            for i, x, o in pairs]
    write("tatsu-lab__alpaca", {
        "hub_id": "tatsu-lab/alpaca", "config": None, "splits": {"train": 52002},
        "features": {"instruction": "Value('string')", "input": "Value('string')", "output": "Value('string')",
                     "text": "Value('string')"},
        "column_order": ["instruction", "input", "output", "text"], "licence": "cc-by-nc-4.0",
    }, {"train": rows}, [
        "columns instruction, input, output and text (the prompt template filled in, with and without input)",
        "input is '' when absent; one is the placeholder '<No Input>'",
        "two rows have an empty output (the text then ends with '### Response:\\n'): ?drop_empty",
    ])


# ---------------------------------------------------------------- dialogsum (dialogsum)
DIALOGUES = [  # (dialogue, [(summary, topic)] one per reference)
    ("#Person1#: Excuse me, is this seat free?\n#Person2#: Yes, go ahead. Are you waiting for the 9 o'clock "
     "train too?\n#Person1#: I am. It's late again, isn't it?\n#Person2#: Twenty minutes, the board says.",
     [("#Person1# asks #Person2# for a seat; both wait for a late train.", "train delay"),
      ("#Person1# and #Person2# share a bench while their train is twenty minutes late.", "waiting"),
      ("Two passengers talk about the late 9 o'clock train.", "small talk")]),
    ("#Person1#: Did you finish the report for Friday?\n#Person2#: Almost. I still need the sales figures.\n"
     "#Person1#: I can send them this afternoon.\n#Person2#: That would be a great help, thanks.",
     [("#Person2# needs sales figures to finish the report; #Person1# will send them.", "work report"),
      ("#Person1# offers to send #Person2# the sales figures this afternoon.", "office help"),
      ("#Person2#'s report for Friday is nearly done.", "deadline")]),
    ("#Person1#: I'd like to return these shoes. They're too small.\n#Person2#: Do you have the receipt?\n"
     "#Person1#: Here it is.\n#Person2#: Would you like a larger size or a refund?\n#Person1#: A larger size, "
     "please.",
     [("#Person1# exchanges a pair of small shoes for a larger size.", "shopping"),
      ("#Person1# returns shoes with a receipt and chooses a bigger size over a refund.", "returns"),
      ("#Person2# helps #Person1# swap shoes that do not fit.", "customer service")]),
    ("#Person1#: Mum, can Sam come over after school?\n#Person2#: Have you done your homework?\n#Person1#: Only "
     "the maths is left.\n#Person3#: I can help with the maths, it's easy.\n#Person2#: Then yes, until six.",
     [("#Person2# lets Sam visit until six once #Person1#'s homework is done; #Person3# helps with maths.",
       "family"),
      ("#Person1# may have a friend over after the maths homework.", "homework"),
      ("#Person3# offers maths help so #Person1#'s friend can visit.", "after school")]),
    ("#Person1#: The printer on the third floor is jammed again. \n#Person2#: I'll call the technician.",
     [("#Person2# will call a technician about the jammed printer.", "office equipment"),
      ("#Person1# reports a printer jam.", "maintenance"),
      ("The third-floor printer is jammed.", "printer")]),
]
TRAIN_DIALOGUES = [
    ("#Person1#: What time does the museum open?\n#Person2#: At ten, and it's free on Sundays.\n#Person1#: "
     "Great, we'll come on Sunday then.", "#Person2# tells #Person1# the museum opens at ten and is free on "
     "Sundays.", "museum visit"),
    ("#Person1#: I think I've caught a cold.\n#Person2#: Drink plenty of water and rest today.\n#Person1#: "
     "Should I see a doctor?\n#Person2#: If the fever lasts more than three days, yes.", "#Person2# advises "
     "#Person1#, who has a cold, to rest and see a doctor if the fever lasts.", "health"),
    ("#Person1#: How much is a ticket to the coast?\n#Person2#: Twelve pounds return.\n#Person1#: One return, "
     "please.", "#Person1# buys a return ticket to the coast for twelve pounds.", "buying tickets"),
    ("#Person1#: Your garden looks lovely.\n#Person2#: Thank you. The roses took three years to grow like "
     "that.\n#Person1#: Could you give me a cutting?\n#Person2#: Of course, in the autumn.", "#Person2# will give "
     "#Person1# a rose cutting in the autumn.", "gardening"),
    ("#Person1#: We need to choose a name for the project.\n#Person2#: What about Lighthouse?\n#Person3#: I "
     "like it. It's short.\n#Person1#: Lighthouse it is.", "The three agree to call the project Lighthouse.",
     "naming a project"),
    ("#Person1#: Can you recommend a good book?\n#Person2#: Try a detective story, they're quick to read.\n"
     "#Person1#: Any title in particular?\n#Person2#: Ask the librarian, she knows them all.", "#Person2# "
     "suggests a detective story and sends #Person1# to the librarian.", "books"),
    ("#Person1#: The heating isn't working in my flat.\n#Person2#: I'll send someone tomorrow morning.\n"
     "#Person1#: Thank you, it's freezing in here.", "#Person1# reports broken heating; #Person2# will send "
     "someone in the morning.", "repairs"),
    ("#Person1#: Are you coming to the party on Saturday?\n#Person2#: I'd love to, but I'm working.\n#Person1#: "
     "Maybe next time, then.", "#Person2# cannot come to #Person1#'s Saturday party because of work.",
     "invitation"),
]
VALIDATION_DIALOGUES = [
    ("#Person1#: Is there a bank near here?\n#Person2#: Two streets down, next to the bakery.", "#Person2# "
     "tells #Person1# where the bank is.", "directions"),
    ("#Person1#: How was your holiday?\n#Person2#: Wonderful. We swam every day.\n#Person1#: You look rested.",
     "#Person2# enjoyed a holiday with daily swimming.", "holiday"),
    ("#Person1#: I'd like to book a table for four at eight.\n#Person2#: We only have one at half past eight.\n"
     "#Person1#: That's fine.", "#Person1# books a table for four at half past eight.", "restaurant booking"),
    ("#Person1#: Can I pay by card?\n#Person2#: Only for amounts over five pounds.\n#Person1#: Then I'll add a "
     "coffee.", "#Person1# adds a coffee so the bill is large enough to pay by card.", "payment"),
]


def dialogsum() -> None:
    row = lambda i, d, s, t: {"id": i, "dialogue": d, "summary": s, "topic": t}  # noqa: E731
    train = [row(f"train_{i}", d, s, t) for i, (d, s, t) in enumerate(TRAIN_DIALOGUES)]
    validation = [row(f"dev_{i}", d, s, t) for i, (d, s, t) in enumerate(VALIDATION_DIALOGUES)]
    test = [row(f"test_{j}_{k + 1}", d, s, t) for j, (d, refs) in enumerate(DIALOGUES) for k, (s, t) in
            enumerate(refs)]
    test = test[:13]  # 4 complete dialogues and the first reference of a fifth: how test[:n] cuts the Hub's split
    write("knkarthick__dialogsum", {
        "hub_id": "knkarthick/dialogsum", "config": None, "splits": {"train": 12460, "validation": 500, "test": 1500},
        "features": {"id": "Value('string')", "dialogue": "Value('string')", "summary": "Value('string')",
                     "topic": "Value('string')"},
        "column_order": ["id", "dialogue", "summary", "topic"],
        "licence": "cc-by-nc-sa-4.0 (card YAML after the 'Fix license metadata' commit; older card revisions said mit)",
    }, {"train": train, "validation": validation, "test": test}, [
        "test: three consecutive rows per dialogue, one per reference summary (test_0_1, test_0_2, test_0_3, ...), "
        "each with its own topic; the last dialogue is cut after its first reference",
        "ids train_N, dev_N (validation), test_N_K",
        "turns '#PersonN#: ...' joined with '\\n', dialogues with 2 and 3 speakers, one with a space before '\\n'",
    ])


# ---------------------------------------------------------------- mt_bench_prompts (benchmark_questions)
MT = [  # (category, [turn 1, turn 2], reference: [] or one string per turn)
    ("writing", ["Write a short note to a neighbour asking them to water your plants while you travel.",
                 "Rewrite the note so that it rhymes."], []),
    ("writing", ["Draft a product description for a reusable water bottle.", "Now make it half as long."], []),
    ("roleplay", ["Pretend you are a tour guide in a small seaside town. Welcome a group of visitors.",
                  "A visitor asks where to eat. Answer in character."], []),
    ("roleplay", ["Act as a patient piano teacher meeting a nervous adult beginner.",
                  "The student says they are too old to learn. Reply."], []),
    ("reasoning", ["A bus leaves at 8:10 and the trip takes 35 minutes. When does it arrive?",
                   "If the bus is 10 minutes late leaving, when does it arrive?"], ["8:45.", "8:55."]),
    ("reasoning", ["Tom is older than Ann, and Ann is older than Ben. Who is the youngest?",
                   "Is Tom older than Ben? Explain."], ["Ben.", "Yes: Tom > Ann > Ben."]),
    ("math", ["What is 15% of 240?", "Increase 240 by that amount. What do you get?"], ["36.", "276."]),
    ("math", ["Solve 3x + 5 = 20.", "Now solve 3x + 5 = 2x + 9."], ["x = 5.", "x = 4."]),
    ("coding", ["Write a Python function that returns the largest of three numbers.",
                "Change it to accept any number of arguments."],
     ["def largest(a, b, c):\n    return max(a, b, c)", "def largest(*xs):\n    return max(xs)"]),
    ("coding", ["Write a SQL query that counts the rows of a table named orders.",
                "Count only the orders placed in 2024, using a column named placed_at."], []),
    ("extraction", ["From the sentence 'The meeting is on 4 May in Room 12 at 3 pm', extract the date, room and "
                    "time as JSON.", "Add a field with the weekday if the year is 2026."], []),
    ("extraction", ["List every city named in: 'We flew from Lisbon to Oslo, then took a train to Bergen.'",
                    "Which of them are in Norway?"], ["Lisbon, Oslo, Bergen.", "Oslo and Bergen."]),
    ("stem", ["Why does a metal spoon feel colder than a wooden one at the same temperature?",
              "Would the same be true in a hot oven? Why?"], []),
    ("stem", ["Explain what a capacitor does in a circuit, for a beginner.", "Give one everyday device that uses "
              "one."], []),
    ("humanities", ["What were the main reasons people built canals in the eighteenth century?",
                    "Why did railways later replace most canal traffic?"], []),
    ("humanities", ["Explain the idea of a social contract in plain words.", "Give a modern example."], []),
]


def mt_bench() -> None:
    rows = []
    for category, prompt, reference in MT:
        pid = int(hashlib.sha256("".join(prompt).encode()).hexdigest(), 16) % 10**8  # the card's formula
        rows.append({"category": category, "prompt": prompt, "reference": reference, "prompt_id": pid})
    write("HuggingFaceH4__mt_bench_prompts", {
        "hub_id": "HuggingFaceH4/mt_bench_prompts", "config": None, "splits": {"train": 80},
        "features": {"category": "Value('string')", "prompt": "List(Value('string'))",
                     "reference": "List(Value('string'))", "prompt_id": "Value('int64')"},
        "column_order": ["category", "prompt", "reference", "prompt_id"], "licence": "apache-2.0",
    }, {"train": rows}, [
        "one split, train; no question_id: prompt_id is a hash, int(sha256(''.join(prompt))) % 10**8",
        "prompt is a list of two turns; reference is [] or one string per turn",
        "the eight MT-Bench categories, two questions each",
    ])


if __name__ == "__main__":
    for make in (rotten_tomatoes, wikitext, medical_abstracts, dolly, alpaca, dialogsum, mt_bench):
        make()
    print("wrote", ", ".join(sorted(p.name for p in HERE.iterdir() if (p / "schema.json").is_file())))

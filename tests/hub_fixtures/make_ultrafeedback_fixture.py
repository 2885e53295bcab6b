"""Write the project-authored fixture rows for HuggingFaceH4/ultrafeedback_binarized in its Hub schema
(tests/hub_fixtures/HuggingFaceH4__ultrafeedback_binarized/<split>.jsonl). Every prompt and answer below was written
for this course; none is copied from the dataset. Run: python tests/hub_fixtures/make_ultrafeedback_fixture.py
"""
import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "HuggingFaceH4__ultrafeedback_binarized"

# (prompt, chosen answer, score, rejected answer, score)
PREFS_TRAIN = [
    ("Give me two tips for keeping basil alive on a windowsill.",
     "Water it when the top of the soil feels dry rather than on a fixed schedule, and turn the pot every few days so all sides get sun. Pinch off flower buds as they appear so the plant keeps putting energy into leaves.",
     8.5,
     "Basil is a herb. It is used in Italian cooking, for example in pesto, and it has a strong smell. Many people like basil.",
     4.0),
    ("Convert 3.5 kilometres to miles and show the calculation.",
     "One kilometre is about 0.621 miles, so 3.5 km x 0.621 = about 2.17 miles.",
     9.0,
     "3.5 kilometres is 5.6 miles, because you multiply by 1.6.",
     3.0),
    ("Write a one-sentence reminder asking a colleague to send the quarterly report by Friday.",
     "Hi Sam, just a friendly reminder to send me the quarterly report by Friday - thanks a lot!",
     8.0,
     "Dear Sam, I am writing to you today in order to remind you about something important. As you may know, there is a report. It is quarterly. Could you please consider the possibility of maybe sending it, ideally at some point near Friday, if that works for you and your schedule, which I understand may be busy.",
     5.0),
    ("What is the difference between a list and a tuple in Python?",
     "A list is mutable: you can add, remove or change its items after creating it. A tuple is immutable, so it cannot change once created; that makes it usable as a dictionary key and signals that the data is fixed.",
     9.0,
     "Lists use square brackets and tuples use round brackets. That is the only difference between them.",
     4.5),
    ("Suggest a name for a small bakery that specialises in sourdough.",
     "\"Slow Rise Bakery\" - it hints at the long fermentation that gives sourdough its flavour.",
     7.5,
     "Bakery.",
     2.0),
    ("Explain in simple words why ice floats on water.",
     "When water freezes, its molecules lock into an open crystal pattern that takes up more space than liquid water. Ice is therefore less dense than water, so it floats.",
     9.0,
     "Ice floats because it is cold and cold things rise to the top.",
     2.5),
    ("Rewrite this sentence to be more concise: 'At this point in time we are not in a position to make a decision.'",
     "We cannot decide yet.",
     8.5,
     "At this current point in time, we are presently not yet in a position to be able to make a final decision.",
     3.5),
    ("List three things to check before a long car journey.",
     "1. Tyre pressure and tread.\n2. Oil and coolant levels.\n3. That the lights and indicators work.",
     8.0,
     "You should check the car. Also check the car again. Make sure the car is fine.",
     3.0),
]
PREFS_TEST = [
    ("How many minutes are there in a day?",
     "There are 24 hours of 60 minutes each, so 24 x 60 = 1,440 minutes in a day.",
     9.0,
     "There are 1,000 minutes in a day.",
     2.0),
    ("Write a short thank-you note to a neighbour who watered my plants.",
     "Dear Ana, thank you so much for watering my plants while I was away - they look happier than ever. Let me know if I can return the favour!",
     8.5,
     "Thanks.",
     3.0),
    ("What does a thermostat do?",
     "A thermostat measures the temperature of a room and switches the heating or cooling on or off to keep it near the temperature you set.",
     8.5,
     "A thermostat is a device. Devices are used in homes and offices and they can be electronic or mechanical, and there are many brands.",
     4.0),
    ("Give one reason to back up your files.",
     "A disk can fail without warning; a backup means you can restore your documents and photos instead of losing them.",
     8.0,
     "Backups are a type of computer file.",
     2.5),
    ("Translate 'good morning' into French.",
     "\"Bonjour\" is the usual way to say good morning in French.",
     9.0,
     "In French it is \"bonsoir\".",
     3.0),
    ("Is a tomato a fruit or a vegetable?",
     "Botanically a tomato is a fruit, because it develops from the flower and contains seeds; in cooking it is usually treated as a vegetable.",
     8.5,
     "A tomato is a vegetable because it is red.",
     3.0),
]


def row(prompt, chosen, sc, rejected, sr):
    user = {"content": prompt, "role": "user"}
    chosen_msgs = [user, {"content": chosen, "role": "assistant"}]
    rejected_msgs = [user, {"content": rejected, "role": "assistant"}]
    return {"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
            "chosen": chosen_msgs, "rejected": rejected_msgs, "messages": chosen_msgs,
            "score_chosen": float(sc), "score_rejected": float(sr)}


splits = {
    "train_prefs": [row(*r) for r in PREFS_TRAIN],
    "train_sft": [row(*r) for r in PREFS_TRAIN[:2]],
    "test_prefs": [row(*r) for r in PREFS_TEST],
    "test_sft": [row(*r) for r in PREFS_TEST[:2]],
    "train_gen": [row(*r) for r in PREFS_TRAIN[2:4]],
    "test_gen": [row(*r) for r in PREFS_TEST[2:4]],
}
for name, rows in splits.items():
    (HERE / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=True) + "\n" for r in rows), encoding="utf-8")

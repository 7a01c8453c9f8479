"""Planning: refresh CPS, diff it against the specs, and produce an ordered, reviewable plan.

``planner.make_plan`` is pure; ``refresh`` is the only module here that talks to CPS (through the
client); ``render`` turns a plan into text, markdown or JSON; ``saved`` writes and checks plan files.
"""

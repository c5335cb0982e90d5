"""Cross-checks of content: names, structure, long texts; each with file, line and key."""

from __future__ import annotations

from flow_helpers import DOMAIN, write

from bot.flows import load_domain, load_flows, validate_content

FLOWS = """
flows:
  broken:
    nlu_trigger: [greet, ask_nothing]
    keywords: [TOUR]
    steps:
      - collect: shoe_size
      - collect: zip
        utter: utter_ask_zip_please
        rejections:
          - if: "slots.zap == '0'"
            utter: utter_nope
      - action: action_custom_missing
      - action: action_known
      - action: action_subscribe
      - set_slots: [{colour: red}]
      - call: ghost
        next: nowhere
      - id: orphan
        action: utter_tour
  tour:
    keywords: [tour]
    steps:
      - id: a
        noop: true
        next: b
      - id: b
        action: utter_tour
        next: a
"""

LONG = DOMAIN + '  utter_long:\n    - text: "' + "ê" * 250 + '"\n'


def run(tmp_path, **kwargs):
    flows = load_flows([write(tmp_path, "flows.yml", FLOWS)])
    domain = load_domain([write(tmp_path, "domain.yml", LONG)])
    found = validate_content(flows, domain, **kwargs)
    return {(p.location.line, p.location.key, p.message, p.warning) for p in found}, found


def test_unknown_names_and_dangling_next(tmp_path):
    found, problems = run(tmp_path, intents={"greet"}, actions={"action_known"})
    path = str(tmp_path / "flows.yml")
    assert all(p.location.file in (path, str(tmp_path / "domain.yml")) for p in problems)
    expected_errors = {
        (3, "flows.broken.nlu_trigger[1]", "unknown intent 'ask_nothing'"),
        (6, "flows.broken.steps[0].collect", "unknown slot 'shoe_size' (declare it under `slots:` in the domain)"),
        (6, "flows.broken.steps[0].collect", "unknown response 'utter_ask_shoe_size' (define it under `responses:`)"),
        (8, "flows.broken.steps[1].utter", "unknown response 'utter_ask_zip_please' (define it under `responses:`)"),
        (10, "flows.broken.steps[1].rejections.if", "condition reads unknown slot 'zap'"),
        (11, "flows.broken.steps[1].rejections.utter", "unknown response 'utter_nope' (define it under `responses:`)"),
        (12, "flows.broken.steps[2].action", "unknown custom action 'action_custom_missing'"),
        (15, "flows.broken.steps[5].set_slots", "unknown slot 'colour' (declare it under `slots:` in the domain)"),
        (16, "flows.broken.steps[6].call", "unknown flow 'ghost'"),
        (17, "flows.broken.steps[6].next", "`next` points to unknown step 'nowhere' in flow 'broken'"),
        (23, "flows.tour.steps[0]", "loop that never waits for the fan: a -> b -> a"),
    }  # fmt: skip
    errors = {(line, key, msg) for line, key, msg, warning in found if not warning}
    assert errors == expected_errors


def test_warnings(tmp_path):
    found, _ = run(tmp_path)
    warnings = {(line, key, msg) for line, key, msg, warning in found if warning}
    assert (18, "flows.broken.steps[7]", "step 'orphan' can never be reached") in warnings
    assert (21, "flows.tour.keywords", "keyword 'tour' also starts flow 'broken'") in warnings
    long = [w for w in warnings if w[1] == "responses.utter_long[0].text"]
    assert long and long[0][2] == "response 'utter_long' is 4 SMS segments in UCS-2 (more than 3)"
    # Without intent/action lists those names are not checked.
    assert not any("intent" in msg or "custom action" in msg for _, _, msg, _ in found)


def test_clean_content_has_no_problems(tmp_path):
    flows = load_flows(
        [
            write(
                tmp_path,
                "f.yml",
                "flows:\n  a:\n    steps:\n      - collect: zip\n      - action: utter_thanks\n",
            )
        ]
    )
    domain = load_domain([write(tmp_path, "d.yml", DOMAIN)])
    assert validate_content(flows, domain, intents={"human_handoff", "cancel"}, actions=set()) == []


CROSS = """
flows:
  ping:
    keywords: [PING]
    steps:
      - action: utter_thanks
      - link: pong
  pong:
    steps:
      - action: utter_thanks
      - link: ping
  selfish:
    keywords: [SELF]
    steps:
      - action: utter_thanks
      - call: selfish
  fine:
    keywords: [FINE]
    steps:
      - link: asks
  asks:
    steps:
      - collect: zip
      - link: fine
"""


def test_loops_across_flows_through_link_and_call(tmp_path):
    flows = load_flows([write(tmp_path, "flows.yml", CROSS)])
    domain = load_domain([write(tmp_path, "domain.yml", DOMAIN)])
    loops = sorted(
        (p.location.line, p.message) for p in validate_content(flows, domain) if "loop" in p.message
    )
    assert loops == [
        (
            5,
            "loop that never waits for the fan: 0_action_utter_thanks -> 1_link_pong -> "
            "pong.0_action_utter_thanks -> pong.1_link_ping -> 0_action_utter_thanks",
        ),
        (
            14,
            "loop that never waits for the fan: 0_action_utter_thanks -> 1_call_selfish -> "
            "0_action_utter_thanks",
        ),
    ]  # fmt: skip  (fine -> asks waits at its collect: no loop)


def test_unknown_placeholders_in_responses(tmp_path):
    flows = load_flows(
        [write(tmp_path, "f.yml", "flows:\n  a:\n    steps:\n      - action: utter_hello\n")]
    )
    domain = load_domain(
        [
            write(
                tmp_path,
                "d.yml",
                DOMAIN
                + '  utter_hello:\n    - text: "Hi {first_name}, {frist_name}! {zip} {{x}}"\n'
                '  utter_from_action:\n    - text: "Your seat: {seat}"\n',
            )
        ]
    )
    found = {(p.location.key, p.message, p.warning) for p in validate_content(flows, domain)}
    assert ("responses.utter_hello[0].text", "response 'utter_hello' uses unknown placeholder "
            "{frist_name} (not a slot or a fan field)", False) in found  # fmt: skip
    assert ("responses.utter_from_action[0].text", "response 'utter_from_action' uses unknown "
            "placeholder {seat} (only a custom action that passes it can fill it)", True) in found  # fmt: skip
    assert not any("first_name" in m or "{zip}" in m or "{x}" in m for _, m, _ in found)


def test_team_back_is_known_only_in_escalation_acknowledgements(tmp_path):
    flows = load_flows(
        [write(tmp_path, "f.yml", "flows:\n  a:\n    steps:\n      - action: utter_x\n")]
    )
    domain = load_domain([write(tmp_path, "d.yml", DOMAIN
        + '  utter_x:\n    - text: "Back {team_back}"\n'
        + '  utter_after_hours:\n    - text: "Back {team_back}"\n'
        + '  utter_complaint_after_hours:\n    - text: "Sorry! Back {team_back}"\n')])  # fmt: skip
    found = [p.location.key for p in validate_content(flows, domain) if "team_back" in p.message]
    assert found == ["responses.utter_x[0].text"]

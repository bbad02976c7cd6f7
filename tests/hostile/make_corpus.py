#!/usr/bin/env python3
"""Regenerate malformed.jsonl, malformed.kinds and accepted.jsonl (see README.md)."""
import json


def rec(name="MODIFY", keys={"id": {"S": "hostile-x"}}, new=None, old=None, t=1795687200, eid=None):
    d = {}
    if t is not None:
        d["ApproximateCreationDateTime"] = t
    if keys is not None:
        d["Keys"] = keys
    if new is not None:
        d["NewImage"] = new
    if old is not None:
        d["OldImage"] = old
    r = {"eventName": name, "dynamodb": d}
    if eid is not None:
        r["eventID"] = eid
    return json.dumps(r)


def img(**kw):
    return {"id": {"S": "hostile-x"}, "meet_time": {"S": "2026-11-26T10:00:00Z"}, **kw}


mal = []


def m(line, kind):
    mal.append((line if isinstance(line, bytes) else line.encode(), kind))


# not JSON
m("{not json", "not_json"); m("eventName: INSERT", "not_json"); m("]", "not_json"); m('"unterminated', "not_json")
m('{"a":1}}', "not_json"); m("{'single': 'quotes'}", "not_json"); m("NaN", "not_json")
m("{\"eventName\": \"INSERT\",}", "not_json")
m("[" * 300 + "]" * 300, "not_json")  # deeper than the parser's limit
# invalid UTF-8
m(b"\xff\xfe\xfd", "not_utf8"); m(b'{"eventName": "\xc0\xaf"}', "not_utf8"); m(b'{"eventID": "\xed\xa0\x80"}', "not_utf8")
m(b'{"eventName":"INSERT","dynamodb":{"Keys":{"id":{"S":"m-\x80"}}}}', "not_utf8")
# not a record
m("42", "not_an_object"); m("null", "not_an_object"); m('"a string"', "not_an_object"); m("[1,2,3]", "not_an_object")
m("true", "not_an_object")
m('{"Records": "nope"}', "records_not_list"); m('{"Records": 7}', "records_not_list")
# missing keys
m(json.dumps({"dynamodb": {"Keys": {"id": {"S": "hostile-x"}}}}), "bad_event_name")
m(json.dumps({"eventName": None, "dynamodb": {}}), "bad_event_name")
m(json.dumps({"eventName": "DELETE", "dynamodb": {}}), "bad_event_name")
m(json.dumps({"eventName": "insert", "dynamodb": {}}), "bad_event_name")
m(json.dumps({"eventName": ["INSERT"], "dynamodb": {}}), "bad_event_name")
m(json.dumps({"eventName": "INSERT"}), "no_dynamodb")
m(json.dumps({"eventName": "INSERT", "dynamodb": []}), "no_dynamodb")
m(json.dumps({"eventName": "INSERT", "dynamodb": None}), "no_dynamodb")
m(rec(keys=None, new={"meet_time": {"S": "2026-11-26T10:00:00Z"}}), "no_meeting_id")
m(rec(keys={"id": {"S": ""}}, new=img()), "no_meeting_id")
m(rec(keys={}, new={"id": {"NULL": True}}), "no_meeting_id")
m(rec(name="INSERT", keys={"id": {"S": "hostile-nostart"}}, new={"status": {"S": "IN_PROGRESS"}}), "no_start")
m(rec(name="REMOVE", keys={"id": {"S": "hostile-nostart2"}}), "no_start")
# wrong types
m(rec(eid=5, new=img()), "bad_event_id")
m(rec(eid={"x": 1}, new=img()), "bad_event_id")
m(rec(t="1795687200", new=img()), "bad_event_time")
m(rec(t=[1], new=img()), "bad_event_time")
m(rec(t=-1, new=img()), "bad_event_time")
m(rec(t=253402300800, new=img()), "bad_event_time")
m(rec(t=1e300, new=img()), "bad_event_time")
m(rec(keys="hostile-x", new=img()), "not_a_map")
m(rec(keys=["id"], new=img()), "not_a_map")
m(rec(new="image"), "not_a_map")
m(rec(new=img(), old=7), "not_a_map")
m(rec(keys={"id": {"N": "1"}}, new=img()), "wrong_type")
m(rec(keys={"id": {"M": {}}}, new=img()), "wrong_type")
m(rec(new=img(meet_time={"N": "1795687200"})), "wrong_type")
m(rec(new=img(meet_time={"BOOL": True})), "wrong_type")
m(rec(new=img(meet_time={"S": 1795687200})), "wrong_type")
m(rec(new=img(status={"N": "1"})), "wrong_type")
m(rec(new=img(status={"SS": ["IN_PROGRESS"]})), "wrong_type")
m(rec(new=img(teacher_ec2_id={"L": [{"S": "i-12345678"}]})), "wrong_type")
m(rec(new=img(), old={"student_ec2_id": {"N": "12345678"}}), "wrong_type")
m(rec(new=img(duration_minutes={"S": "30"})), "wrong_type")
m(rec(new=img(duration_minutes={"N": 30})), "wrong_type")
m(rec(new=img(id={"N": "7"})), "wrong_type")
m(rec(new=img(created_at={"B": "AAAA"})), "wrong_type")
m(rec(new=img(meet_time="2026-11-26T10:00:00Z")), "not_dynamodb_json")
m(rec(new=img(meet_time={})), "not_dynamodb_json")
m(rec(new=img(meet_time={"S": "x", "N": "1"})), "not_dynamodb_json")
m(rec(new=img(teacher_session_data="blob")), "not_dynamodb_json")
m(rec(new=img(student_session_data={"STRING": "x"})), "not_dynamodb_json")
m(rec(new=img(status=None)), "not_dynamodb_json")
m(rec(new=img(teacher_ec2_id=[])), "not_dynamodb_json")
# absurd dates and numbers
for bad in ["2026-02-30T10:00:00Z", "2026-11-26T25:00:00Z", "2026-11-26T10:61:00Z", "2026-11-26T10:00:61Z",
            "0000-01-01T00:00:00Z", "26-11-26T10:00:00Z", "2026-11-26T10:00:00+25:00", "2026-11-26T10:00:00ZZ", "1e9", "",
            "tomorrow", "2026-11-26T10:00:00.Z", "\uff12\uff10\uff12\uff16-11-26T10:00:00Z", "2026-11-26\t10:00:00Z"]:
    m(rec(new=img(meet_time={"S": bad})), "bad_time")
m(rec(new=img(created_at={"S": "yesterday"})), "bad_time")
for bad in ["abc", "", "1e309", "-1e400", "NaN", "Infinity", "0x10", "1_000", "1,5", " 30", "30 ", "--1", "1e", ".", "+"]:
    m(rec(new=img(duration_minutes={"N": bad})), "bad_number")

with open("malformed.jsonl", "wb") as f:
    for line, _ in mal:
        f.write(line + b"\n")
with open("malformed.kinds", "w") as f:
    for _, k in mal:
        f.write(k + "\n")

acc = []


def meet(mid, t=1795687200, **kw):
    return rec(name="INSERT", keys={"id": {"S": mid}}, new={"id": {"S": mid}, **kw}, t=t, eid="acc-" + mid)


acc.append(meet("hostile-far-future", meet_time={"S": "9999-12-31T23:59:59Z"}))
acc.append(meet("hostile-year-one", meet_time={"S": "0001-01-01T00:00:00Z"}))
acc.append(meet("hostile-offset", meet_time={"S": "2026-11-26T23:59:59-23:59"}))
acc.append(meet("hostile-huge-duration", meet_time={"S": "2026-11-26T10:00:00Z"}, duration_minutes={"N": "1e308"},
                status={"S": "IN_PROGRESS"}))
acc.append(meet("hostile-negative-duration", meet_time={"S": "2026-11-26T10:00:00Z"}, duration_minutes={"N": "-1e308"},
                status={"S": "IN_PROGRESS"}))
acc.append(meet("hostile-tiny-duration", meet_time={"S": "2026-11-26T10:00:00Z"}, duration_minutes={"N": "1e-300"},
                status={"S": "IN_PROGRESS"}))
acc.append(meet("hostile-long-fraction", meet_time={"S": "2026-11-26T10:00:00.123456789012345678901234567890Z"}))
acc.append(meet("hostile-epoch", t=0, meet_time={"S": "1970-01-01T00:00:00Z"}))
acc.append(meet("hostile-last-second", t=253402300799.999, meet_time={"S": "2026-11-26T10:00:00Z"}))
acc.append(meet("hostile-bad-ids", meet_time={"S": "2026-11-26T10:00:00Z"}, teacher_ec2_id={"S": "i-XYZ"},
                student_ec2_id={"S": "i-0123456789abcdef0 "}))
acc.append(meet("hostile-more-bad-ids", meet_time={"S": "2026-11-26T10:00:00Z"}, teacher_ec2_id={"S": "sir-12345678"},
                student_ec2_id={"S": "i-123456789012345678901234"}))
acc.append(meet("hostile-empty-ids", meet_time={"S": "2026-11-26T10:00:00Z"}, teacher_ec2_id={"S": ""},
                student_ec2_id={"NULL": True}))
acc.append(meet("hostile-unicode-\u2713", meet_time={"S": "2026-11-26T10:00:00Z"}, status={"S": "IN_PROGRESS\u2713"}))
acc.append(meet("hostile-weird-session", meet_time={"S": "2026-11-26T10:00:00Z"}, teacher_session_data={"BOOL": False},
                student_session_data={"L": []}))
acc.append(meet("hostile-extra-junk", meet_time={"S": "2026-11-26T10:00:00Z"}, foo="bar", baz={"S": 1, "N": 2},
                **{"": {"?": None}}))
acc.append(json.dumps({"Records": []}))
acc.append(json.dumps({"Records": [json.loads(meet("hostile-in-envelope", meet_time={"S": "2026-11-26T10:00:00Z"}))]}))
with open("accepted.jsonl", "w") as f:
    for line in acc:
        f.write(line + "\n")
print(len(mal), "malformed,", len(acc), "accepted")

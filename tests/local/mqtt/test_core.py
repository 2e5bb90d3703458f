"""The gateway's protocol core in memory (no sockets, no loop): takeover, clean session, inflight window, DUP
redelivery and subscribe permissions. The socket-level proof that the gateway behaves the same is in
test_gateway_raw.py, test_gateway_sdk.py and the Node SDK / Mosquitto comparisons."""

from __future__ import annotations

from edgegen.local.mqtt.core import BrokerCore
from edgegen.local.mqtt.packets import SubackCode
from edgegen.local.mqtt.session import SessionState
from edgegen.local.mqtt.store import MemorySessionStore
from edgegen.local.mqtt.topics import Identity

MODULE = Identity("dev", "m")
INPUTS = "devices/dev/modules/m/inputs/#"
TOPIC = b"devices/dev/modules/m/inputs/in/"


def _core(**limits: int) -> BrokerCore:
    return BrokerCore(MemorySessionStore(), **limits)


def _online_subscribed(core: BrokerCore, *, clean: bool = False) -> None:
    opened = core.open_session(MODULE, clean)
    assert core.subscribe(opened.session, [(INPUTS, 1)]).codes == [1]


def _send(core: BrokerCore, payload: bytes, *, online: bool = True, qos: int = 1) -> bool:
    return core.enqueue(MODULE, TOPIC, payload, qos, None, online=online) is not None


def test_takeover_returns_the_previous_connections_unacknowledged_messages_first() -> None:
    core = _core()
    _online_subscribed(core)
    assert _send(core, b"one") and _send(core, b"two")
    first = core.outgoing(core.sessions[MODULE.client_id])
    assert [o.message.payload for o in first] == [b"one", b"two"]
    core.acknowledge(core.sessions[MODULE.client_id], first[0].packet_id or 0)
    # the same client id connects again: the old connection ends, then the new one opens the session
    core.end_connection(MODULE.client_id)
    opened = core.open_session(MODULE, False)
    assert opened.present and opened.session.state is SessionState.ONLINE
    again = core.outgoing(opened.session)
    assert [(o.message.payload, o.dup) for o in again] == [(b"two", True)]


def test_clean_session_discards_the_stored_one_and_persistent_resumes_it() -> None:
    core = _core()
    opened = core.open_session(MODULE, False)
    assert not opened.present  # a new persistent session
    core.subscribe(opened.session, [(INPUTS, 1)])
    core.end_connection(MODULE.client_id)
    assert _send(core, b"kept while offline", online=False)  # QoS 1 for an offline persistent session: kept
    assert not _send(core, b"qos 0 offline", online=False, qos=0)  # QoS 0 for an offline client: not kept
    resumed = core.open_session(MODULE, False)
    assert resumed.present and resumed.session.subscriptions == {INPUTS: 1}
    assert [o.message.payload for o in core.outgoing(resumed.session)] == [b"kept while offline"]
    core.end_connection(MODULE.client_id)
    clean = core.open_session(MODULE, True)
    assert not clean.present and clean.session.subscriptions == {} and clean.session.pending == 0
    assert core.store.load(MODULE.client_id) is None
    core.end_connection(MODULE.client_id)  # a clean session ends with its connection
    assert MODULE.client_id not in core.sessions
    assert not _send(core, b"nobody", online=False)


def test_inflight_window_holds_back_messages_until_an_ack_frees_a_slot() -> None:
    core = _core(max_inflight=2)
    _online_subscribed(core)
    session = core.sessions[MODULE.client_id]
    for i in range(4):
        assert _send(core, b"m%d" % i)
    sent = core.outgoing(session)
    assert [o.message.payload for o in sent] == [b"m0", b"m1"] and core.outgoing(session) == []
    assert core.acknowledge(session, 999) is None  # an unknown packet id frees nothing
    acked = core.acknowledge(session, sent[0].packet_id or 0)
    assert acked is not None and acked.payload == b"m0"
    assert [o.message.payload for o in core.outgoing(session)] == [b"m2"]


def test_dup_is_set_only_on_qos1_redelivery() -> None:
    core = _core()
    _online_subscribed(core)
    session = core.sessions[MODULE.client_id]
    assert _send(core, b"at least once") and _send(core, b"at most once", qos=0)
    first = core.outgoing(session)
    assert [(o.packet_id is not None, o.dup) for o in first] == [(True, False), (False, False)]
    core.end_connection(MODULE.client_id)
    redelivered = core.outgoing(core.open_session(MODULE, False).session)
    assert [(o.message.payload, o.dup) for o in redelivered] == [(b"at least once", True)]  # QoS 0 is gone


def test_subscribe_grants_only_the_identitys_own_topics_with_qos_capped_at_1() -> None:
    core = _core()
    session = core.open_session(MODULE, True).session
    outcome = core.subscribe(session, [
        (INPUTS, 2),  # its own inputs: granted at QoS 1 (IoT Hub has no QoS 2)
        ("devices/other/modules/m/inputs/#", 1),  # another identity's
        ("$iothub/methods/POST/#", 0),  # the method topic every identity may use
        ("devices/dev/modules/m/inputs/a#", 1),  # not a valid filter
        ("#", 0),
    ])
    assert outcome.codes == [1, SubackCode.FAILURE, 0, SubackCode.FAILURE, SubackCode.FAILURE]
    assert outcome.granted == [INPUTS, "$iothub/methods/POST/#"]
    assert session.subscriptions == {INPUTS: 1, "$iothub/methods/POST/#": 0}
    assert not core.enqueue(Identity("dev", "other"), b"devices/dev/modules/other/inputs/in/", b"x", 1, None,
                            online=True)  # no session for the other module


def test_offline_persistent_sessions_expire_by_the_injected_clock() -> None:
    now = [1000.0]
    core = BrokerCore(MemorySessionStore(), session_expiry=60, clock=lambda: now[0])
    _online_subscribed(core)
    core.end_connection(MODULE.client_id)
    assert _send(core, b"within the expiry", online=False)
    now[0] += 61
    assert not _send(core, b"after it", online=False)
    assert MODULE.client_id not in core.sessions and not core.open_session(MODULE, False).present

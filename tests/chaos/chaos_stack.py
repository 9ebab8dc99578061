"""The chaos suite's own stack and pipeline: Kafka + PostgreSQL on separate ports, the services as processes.

The fault suite stops and restarts the broker and the database, so it never
runs on the shared local stack: :class:`OwnStack` drives ``infra/stack.sh``
with its own run folder and ports (default ``/tmp/chaos-run``, Kafka 29092,
controller 29093, PostgreSQL 55442) and refuses the shared stack's ports.

:class:`ChaosPipeline` runs ``crm_sandbox``, ``ticket_classifier``,
``email_summarizer``, ``enricher`` (the built-in ``score_request``), ``warehouse_writer`` and
``crm_writer`` the way ``infra/services.sh`` and ``tests/e2e/e2e_stack.py``
do (``python -m <service>``, configured only through environment variables),
on fresh topics and a fresh database, with the three AI services pointed at
an in-process :class:`OpenAITestServer` whose faults the scenarios script.
Every service can be SIGKILLed and restarted. The consumer services run with
static group membership, as ``infra/services.sh`` runs them
(:func:`membership_env`: ``group.instance.id`` ``<service>-<replica>``, kept
across restarts, and a 30 s session), so a restarted service takes its
partitions back at once; ``static_membership=False`` (``--membership dynamic``)
runs them with dynamic membership and the default 45 s session instead.

Replicas (``replicas={service: n}``, the replica scenarios): ``n`` instances of
a service, each its own process named and identified ``<service>-<replica>``
(its ``group.instance.id``), all in the service's one group; a scenario can stop
some of them on purpose (``ServiceProc.wanted``), and nothing restarts those.
``via_proxy=True``: the services reach the broker through a
:class:`tests.netkit.KafkaProxy` on a port of its own (``broker-partition`` cuts
it); the runner's producer and inspector keep talking to the broker directly.

Planted secrets: the services run with a distinctive OpenAI API key, a
distinctive Salesforce session token (the sandbox accepts it) and a database
role with a distinctive password, so that the logs can be searched for them
afterwards (:data:`PLANTED`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported without __all__
from psycopg import sql

from crmpilot.llm.testing import OpenAITestServer
from crmpilot.llm.testing.server import ChatRequest, Reply
from crmpilot.tasks.taxonomy import DEFAULT_CATEGORIES
from crmpilot.warehouse import migrate
from tests.netkit import KafkaProxy, free_port

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "infra" / "stack.sh"
SHARED_PORTS = {9092, 9093, 55432}

# Distinctive values that must never show up in a log line, a result or a request body.
PLANTED_OPENAI_KEY = "sk-chaos-PLANTED-" + "7f3a9c2e" * 4
PLANTED_SF_SESSION = "00Dchaos!PLANTED.session." + "b41d" * 8
PLANTED_DB_PASSWORD = "pg-PLANTED-" + "c0ffee42" * 3
PLANTED = {
    "openai_api_key": PLANTED_OPENAI_KEY,
    "salesforce_session": PLANTED_SF_SESSION,
    "database_password": PLANTED_DB_PASSWORD,
}
DB_ROLE = "chaos_svc"

AI_SERVICES = ("ticket_classifier", "email_summarizer", "enricher")
SERVICE_ARGS = {"enricher": ("--enrichment", "score_request")}
"""The arguments of a service's module: the enricher runs the built-in score_request spec."""
PIPELINE_SERVICES = (*AI_SERVICES, "warehouse_writer", "crm_writer")
# the session of a static member: how long an instance that stops for good keeps its partitions
STATIC_SESSION_TIMEOUT_MS = 30_000


def membership_env(service: str, replica: int = 1) -> dict[str, str]:
    """Static group membership of one instance of a consumer service, as ``infra/services.sh`` sets it.

    ``CRMPILOT_<SERVICE>_GROUP_INSTANCE_ID`` is ``<service>-<replica>``: unique in the
    service's group, and the same after every restart of that instance (the
    :class:`ServiceProc` keeps its environment), so the restarted process takes its
    partitions back at once instead of waiting for the killed one's session to expire.
    """
    prefix = f"CRMPILOT_{service.upper()}_"
    return {
        prefix + "GROUP_INSTANCE_ID": f"{service}-{replica}",
        prefix + "SESSION_TIMEOUT_MS": str(STATIC_SESSION_TIMEOUT_MS),
    }


class ChaosError(RuntimeError):
    """The harness itself failed (not a finding about crmpilot)."""


# --- the stack -------------------------------------------------------------------------


@dataclass(frozen=True)
class StackConfig:
    run_dir: Path = Path(os.environ.get("CRMPILOT_CHAOS_RUN_DIR", "/tmp/chaos-run"))
    kafka_port: int = int(os.environ.get("CRMPILOT_CHAOS_KAFKA_PORT", "29092"))
    controller_port: int = int(os.environ.get("CRMPILOT_CHAOS_KAFKA_CONTROLLER_PORT", "29093"))
    pg_port: int = int(os.environ.get("CRMPILOT_CHAOS_PG_PORT", "55442"))

    def __post_init__(self) -> None:
        clash = SHARED_PORTS & {self.kafka_port, self.controller_port, self.pg_port}
        if clash:
            raise ChaosError(
                f"the chaos stack must not use the shared stack's ports {sorted(clash)}: it restarts its "
                "broker and database"
            )


class OwnStack:
    """Kafka and PostgreSQL of the chaos run, through ``infra/stack.sh`` with their own ports and folder."""

    def __init__(self, config: StackConfig | None = None, *, log: Callable[[str], None] = print) -> None:
        self.config = config or StackConfig()
        self.log = log
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        self.stack_log = self.config.run_dir / "chaos-stack.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.config.kafka_port}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://crmpilot:crmpilot@127.0.0.1:{self.config.pg_port}/crmpilot"

    def _env(self) -> dict[str, str]:
        c = self.config
        return {
            **os.environ,
            "CRMPILOT_RUN_DIR": str(c.run_dir),
            "CRMPILOT_KAFKA_PORT": str(c.kafka_port),
            "CRMPILOT_KAFKA_CONTROLLER_PORT": str(c.controller_port),
            "CRMPILOT_PG_PORT": str(c.pg_port),
        }

    def sh(self, command: str) -> None:
        with self.stack_log.open("a") as out:
            out.write(f"=== {time.strftime('%H:%M:%S')} stack.sh {command}\n")
            out.flush()
            proc = subprocess.run(
                [str(STACK_SH), command],
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if proc.returncode != 0:
            raise ChaosError(f"infra/stack.sh {command} failed ({proc.returncode}); see {self.stack_log}")

    def up(self) -> None:
        self.sh("up")
        self._ensure_role()

    def down(self) -> None:
        self.sh("down")

    def kafka_down(self) -> None:
        self.sh("kafka-down")

    def kafka_up(self) -> None:
        self.sh("kafka-up")

    def pg_down(self) -> None:
        self.sh("pg-down")

    def pg_up(self) -> None:
        self.sh("pg-up")

    def kafka_kill(self) -> None:
        """SIGKILL the broker (no controlled shutdown)."""
        pid_file = self.config.run_dir / "kafka.pid"
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def _ensure_role(self) -> None:
        """A login role with a distinctive password (the planted database secret), able to create databases.

        The stack's own ``crmpilot`` role may not create roles; the superuser
        is reached over the cluster's unix socket as the ``postgres`` OS user,
        as ``infra/stack.sh`` itself does.
        """
        base = (self.config.run_dir / "postgres.location").read_text().strip()
        stmt = (
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{DB_ROLE}') THEN "
            f"CREATE ROLE {DB_ROLE} LOGIN CREATEDB PASSWORD '{PLANTED_DB_PASSWORD}'; END IF; END $$;"
        )
        psql = [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            base,
            "-p",
            str(self.config.pg_port),
            "-d",
            "postgres",
            "-c",
            stmt,
        ]
        cmd = ["runuser", "-u", "postgres", "--", *psql] if os.geteuid() == 0 else psql
        proc = subprocess.run(cmd, cwd="/", capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ChaosError(f"cannot create the chaos database role: {proc.stderr.strip()}")

    def role_url(self, db: str) -> str:
        return f"postgresql://{DB_ROLE}:{PLANTED_DB_PASSWORD}@127.0.0.1:{self.config.pg_port}/{db}"

    def wait_pg(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


# --- the model endpoint -----------------------------------------------------------------

_CATEGORIES = [c.name for c in DEFAULT_CATEGORIES]


def _task_of(req: ChatRequest) -> str:
    system = str(req.messages[0].get("content") or "") if req.messages else ""
    if system.startswith("You summarize customer emails"):
        return "summarize_email"
    if system.startswith("You score incoming"):
        return "score_request"
    return "classify_ticket"


def _line(req: ChatRequest, prefix: str) -> str:
    for line in str(req.messages[-1].get("content") or "").splitlines() if req.messages else ():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def classify_answer(req: ChatRequest) -> Reply:
    """A valid answer for any of the three tasks, chosen deterministically from the input."""
    task = _task_of(req)
    h = sum(_line(req, "Subject:").encode()) + len(req.text)
    if task == "summarize_email":
        return Reply(
            {
                "summary": "The customer asks support to look into their request.",
                "intent": ("complaint", "question", "request", "payment")[h % 4],
                "sentiment": ("negative", "neutral", "positive")[h % 3],
                "urgency": ("low", "normal", "high")[h % 3],
                "action_items": [],
                "entities": [],
                "confidence": 0.91,
            }
        )
    if task == "score_request":
        score = 20 + h % 80
        answer = {
            "score": score,
            "factors": [{"name": "seats stated", "direction": "up", "weight": 10, "evidence": "kind: lead"}],
            "risk_flags": ["incomplete"] if h % 2 else [],
            "next_action": "Call the contact this week.",
        }
        return Reply({**answer, "confidence": dict.fromkeys(answer, 0.9)})
    return Reply(
        {
            "category": _CATEGORIES[h % len(_CATEGORIES)],
            "queue": "general",
            "priority": ("Low", "Medium", "High", "Urgent")[h % 4],
            "sentiment": ("negative", "neutral", "positive")[h % 3],
            "language": "en",
            "escalate": False,
            "escalation_reason": None,
            "confidence": {
                "category": 0.93,
                "priority": 0.9,
                "sentiment": 0.9,
                "language": 0.99,
            },
            "rationale": "The subject names the problem.",
        }
    )


# --- service processes ------------------------------------------------------------------


@dataclass
class ServiceProc:
    """One service as a process (``python -m <name>``); restartable, killable."""

    name: str
    """The instance: the module's name, or ``<service>-<replica>`` for a replica."""
    args: tuple[str, ...]
    env: Mapping[str, str]
    log: Path
    ready: str = "consuming"
    module: str | None = None
    """The module run (``python -m``); default: ``name``."""
    replica: int = 1
    wanted: bool = True
    """Should be running: a scenario that scales a service down clears it, so nothing restarts that instance."""
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    stops: int = 0

    def start(self, timeout: float = 90) -> None:
        self.wait_ready(self.launch(), timeout)

    def launch(self) -> int:
        """Start the process; returns the log size before it, for :meth:`wait_ready`."""
        size = self.log.stat().st_size if self.log.exists() else 0
        handle = self.log.open("ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module or self.name, *self.args],
                cwd=REPO,
                env=dict(self.env),
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        finally:
            handle.close()
        self.starts += 1
        return size

    def wait_ready(self, since: int, timeout: float = 90) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ChaosError(f"{self.name} exited with {self.proc.returncode} at start:\n{self.tail()}")
            with self.log.open("rb") as f:
                f.seek(since)
                if self.ready.encode() in f.read():
                    return
            time.sleep(0.1)
        raise ChaosError(f"{self.name} not ready after {timeout} s:\n{self.tail()}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.alive and self.proc is not None else None

    @property
    def service(self) -> str:
        return self.module or self.name

    def sigkill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1

    def stop(self) -> None:
        """SIGTERM (graceful: drain, commit, leave the group), SIGKILL after 40 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.stops += 1
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# --- the pipeline ------------------------------------------------------------------------


@dataclass
class ChaosPipeline:
    """Topics, database, sandbox, model endpoint and services of one chaos run."""

    stack: OwnStack
    workdir: Path
    partitions: int = 3
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    extra_env: Mapping[str, str] = field(default_factory=dict)
    answer: Callable[[ChatRequest], Any] = classify_answer
    static_membership: bool = True
    """Each consumer service with a ``group.instance.id`` of its own (:func:`membership_env`)."""
    leave_on_stop: bool = True
    """False: ``CRMPILOT_<SERVICE>_LEAVE_GROUP_ON_STOP=false``, a static member stays in its group on SIGTERM
    (KIP-345)."""
    replicas: Mapping[str, int] = field(default_factory=dict)
    """Instances per consumer service (default 1). Not empty: every instance is named and
    keyed ``<service>-<replica>`` (also its ``group.instance.id``), ``1`` included."""
    via_proxy: bool = False
    """The services reach the broker through a :class:`~tests.netkit.KafkaProxy` (``broker-partition`` cuts it);
    the runner's own producer and inspector do not."""
    proxy: KafkaProxy | None = None
    db: str = ""
    database_url: str = ""
    sandbox_port: int = 0
    llm: OpenAITestServer | None = None
    services: dict[str, ServiceProc] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        """This run's copy of a crmpilot topic, e.g. ``topic("crm.case.events")``."""
        return f"chaos.{self.run}.{name}"

    @property
    def source_topics(self) -> dict[str, str]:
        """Source topic per AI service."""
        return {
            "ticket_classifier": self.topic("crm.case.events"),
            "email_summarizer": self.topic("crm.email.events"),
            "enricher": self.topic("erp.request.events"),
        }

    @property
    def result_topics(self) -> dict[str, str]:
        """Result topic per AI service."""
        return {
            "ticket_classifier": self.topic("ai.ticket.classified"),
            "email_summarizer": self.topic("ai.email.summarized"),
            "enricher": self.topic("ai.request.scored"),
        }

    @property
    def topics(self) -> list[str]:
        return [n for t in (*self.source_topics.values(), *self.result_topics.values()) for n in (t, t + ".dlq")]

    @property
    def groups(self) -> dict[str, str]:
        return {s: f"chaos-{self.run}-{s}" for s in PIPELINE_SERVICES}

    @property
    def reads(self) -> dict[str, list[str]]:
        """Topics each service's group reads."""
        sources, results = (
            list(self.source_topics.values()),
            list(self.result_topics.values()),
        )
        return {
            **{s: [self.source_topics[s]] for s in AI_SERVICES},
            "warehouse_writer": [*results, *sources],
            "crm_writer": results,
        }

    @property
    def sandbox_url(self) -> str:
        return f"https://127.0.0.1:{self.sandbox_port}"

    @property
    def ca_path(self) -> Path:
        return self.workdir / "tls" / "ca.pem"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    # --- lifecycle

    def setup(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.db = f"chaos_{self.run}"
        with psycopg.connect(self.stack.role_url("crmpilot"), autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(self.db)))
        self.database_url = self.stack.role_url(self.db)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            migrate(conn)
        admin = AdminClient({"bootstrap.servers": self.stack.bootstrap, "log_level": 0})
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=self.partitions, replication_factor=1) for t in self.topics]
        )
        for f in futures.values():
            f.result(30)
        deadline = time.monotonic() + 30
        while not set(self.topics) <= set(admin.list_topics(timeout=10).topics):
            if time.monotonic() > deadline:
                raise ChaosError("created topics not visible")
            time.sleep(0.1)
        self.llm = OpenAITestServer(self.answer).start()
        # a killed classifier resets its connections: nothing to report (the server would print a traceback)
        if self.llm._httpd is not None:
            self.llm._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]  # silenced on this instance
        self.sandbox_port = free_port()
        if self.via_proxy:
            self.proxy = KafkaProxy(self.stack.bootstrap).start()
        self.env = self._service_env()
        self.services = {
            "crm_sandbox": ServiceProc(
                "crm_sandbox",
                ("--seed", "demo"),
                self.env,
                self.log_dir / "crm_sandbox.log",
                ready="listening on",
            ),
        }
        for name in PIPELINE_SERVICES:
            if not self.replicas:
                self.services[name] = ServiceProc(
                    name, SERVICE_ARGS.get(name, ()), self.service_env(name), self.log_dir / f"{name}.log"
                )
                continue
            for n in range(1, self.replicas.get(name, 1) + 1):
                instance = f"{name}-{n}"
                self.services[instance] = ServiceProc(
                    instance,
                    SERVICE_ARGS.get(name, ()),
                    self.service_env(name, n),
                    self.log_dir / f"{instance}.log",
                    module=name,
                    replica=n,
                )
        self.services["crm_sandbox"].start()  # the CRM writer logs in at start
        consumers = [(svc, svc.launch()) for name, svc in self.services.items() if name != "crm_sandbox"]
        for svc, since in consumers:
            svc.wait_ready(since, timeout=120)

    def instances(self, service: str) -> list[ServiceProc]:
        """The instances of a pipeline service (one, or its replicas)."""
        return [svc for svc in self.services.values() if svc.service == service]

    @property
    def consumers(self) -> list[ServiceProc]:
        """Every instance of a consumer service (not the sandbox)."""
        return [svc for svc in self.services.values() if svc.service in PIPELINE_SERVICES]

    def service_env(self, name: str, replica: int = 1) -> dict[str, str]:
        """The environment of one instance of a consumer service: the pipeline's, plus its membership."""
        membership = membership_env(name, replica) if self.static_membership else {}
        if not self.leave_on_stop:
            membership[f"CRMPILOT_{name.upper()}_LEAVE_GROUP_ON_STOP"] = "false"
        return {**self.env, **membership, **self.extra_env}

    def _service_env(self) -> dict[str, str]:
        assert self.llm is not None
        groups, src, res, reads = (
            self.groups,
            self.source_topics,
            self.result_topics,
            self.reads,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRMPILOT_", "OPENAI_"))}
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "CRMPILOT_KAFKA_BOOTSTRAP": self.proxy.address if self.proxy is not None else self.stack.bootstrap,
                "CRMPILOT_DATABASE_URL": self.database_url,
                # the sandbox
                "CRMPILOT_SANDBOX_PORT": str(self.sandbox_port),
                "CRMPILOT_SANDBOX_CERT_DIR": str(self.workdir / "tls"),
                "CRMPILOT_SANDBOX_SESSION_TOKEN": PLANTED_SF_SESSION,
                "CRMPILOT_SANDBOX_API_DAILY_LIMIT": "100000000",
                # the CRM writer's connection: the planted session
                "CRMPILOT_SALESFORCE_INSTANCE_URL": f"https://127.0.0.1:{self.sandbox_port}",
                "CRMPILOT_SALESFORCE_SESSION_ID": PLANTED_SF_SESSION,
                "CRMPILOT_SALESFORCE_CA_BUNDLE": str(self.ca_path),
                "CRMPILOT_SALESFORCE_TIMEOUT_S": "10",
                # the model: the OpenAI-protocol test server, with the planted key
                "CRMPILOT_LLM_PROVIDER": "openai",
                "CRMPILOT_LLM_BASE_URL": self.llm.base_url,
                "CRMPILOT_LLM_API_KEY": PLANTED_OPENAI_KEY,
                "CRMPILOT_LLM_TIMEOUT": "5",
                "CRMPILOT_LLM_DEADLINE": "30",
                "CRMPILOT_LLM_MAX_CONCURRENCY": "32",
                "CRMPILOT_LLM_BREAKER_RESET": "3",
                # the AI services: nothing is skipped for low confidence, so every result reaches the CRM
                "CRMPILOT_TICKET_CLASSIFIER_GROUP_ID": groups["ticket_classifier"],
                "CRMPILOT_TICKET_CLASSIFIER_INPUT_TOPIC": src["ticket_classifier"],
                "CRMPILOT_TICKET_CLASSIFIER_OUTPUT_TOPIC": res["ticket_classifier"],
                "CRMPILOT_TICKET_CLASSIFIER_THRESHOLD_LOW": "0",
                "CRMPILOT_EMAIL_SUMMARIZER_GROUP_ID": groups["email_summarizer"],
                "CRMPILOT_EMAIL_SUMMARIZER_INPUT_TOPIC": src["email_summarizer"],
                "CRMPILOT_EMAIL_SUMMARIZER_OUTPUT_TOPIC": res["email_summarizer"],
                "CRMPILOT_EMAIL_SUMMARIZER_THRESHOLD_LOW": "0",
                "CRMPILOT_ENRICHER_GROUP_ID": groups["enricher"],
                "CRMPILOT_ENRICHER_INPUT_TOPICS": json.dumps([src["enricher"]]),
                "CRMPILOT_ENRICHER_OUTPUT_TOPIC": res["enricher"],
                # the warehouse writer: every result and source topic
                "CRMPILOT_WAREHOUSE_WRITER_GROUP_ID": groups["warehouse_writer"],
                "CRMPILOT_WAREHOUSE_WRITER_TOPICS": json.dumps(reads["warehouse_writer"]),
                # the CRM writer: short pauses so that a run stays bounded
                "CRMPILOT_CRM_WRITER_GROUP_ID": groups["crm_writer"],
                "CRMPILOT_CRM_WRITER_TOPICS": json.dumps(reads["crm_writer"]),
                "CRMPILOT_CRM_WRITER_LIMIT_PAUSE_S": "3",
                "CRMPILOT_CRM_WRITER_BACKOFF_MAX_S": "4",
            }
        )
        env.update(self.extra_env)
        return env

    def ensure_running(self, *, everyone: bool = False) -> list[str]:
        """Restart any wanted instance that died on its own; returns their names (a finding when not empty).

        ``everyone``: first want every instance again (a scenario starts with all of them), and
        start the ones a scenario stopped on purpose without reporting them."""
        if everyone:
            for svc in self.services.values():
                if not svc.wanted and not svc.alive:
                    svc.wanted = True
                    svc.start()
        died = [name for name, svc in self.services.items() if svc.wanted and not svc.alive]
        for name in died:
            self.services[name].start()
        return died

    def start_all(self, procs: list[ServiceProc], timeout: float = 120) -> None:
        """Launch several instances at once and wait until each consumes."""
        launched = [(svc, svc.launch()) for svc in procs]
        for svc, since in launched:
            svc.wait_ready(since, timeout=timeout)

    def teardown(self, *, drop: bool = True) -> None:
        consumers = self.consumers
        for svc in consumers:  # SIGTERM them all at once, then wait: replicas stop in parallel
            if svc.alive and svc.proc is not None:
                svc.proc.send_signal(signal.SIGTERM)
        for svc in reversed(list(self.services.values())):
            svc.stop()
        if self.llm is not None:
            self.llm.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if not drop:
            return
        try:
            admin = AdminClient({"bootstrap.servers": self.stack.bootstrap, "log_level": 0})
            for f in admin.delete_topics(self.topics, operation_timeout=30).values():
                f.result(30)
            with psycopg.connect(self.stack.role_url("crmpilot"), autocommit=True) as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(self.db)))
        except Exception as exc:  # noqa: BLE001 - leftovers in the chaos stack are harmless; say so
            print(f"[chaos] cleanup incomplete: {exc}", file=sys.stderr)

    def logs_text(self) -> dict[str, str]:
        return {p.stem: p.read_text(errors="replace") for p in self.log_dir.glob("*.log")}

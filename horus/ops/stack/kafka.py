"""A single-node Apache Kafka broker in KRaft mode, run on the JVM from jars fetched with Maven."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from importlib import resources
from pathlib import Path

from horus.ops.stack.processes import ProcessTable, StackError, require_tool, wait_until

HEAP = "-Xmx1g"  # 512m ran out of memory with a few thousand partitions (repeated test runs)


def jar_dir(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"kafka-{version}" / "lib"


def ensure_jars(cache_dir: Path, version: str) -> Path:
    """Fetch the broker's class path into the cache once; later runs are offline."""
    lib = jar_dir(cache_dir, version)
    done = lib / ".complete"
    if done.exists():
        return lib
    require_tool("java", "install Java 17+ (Debian: `apt-get install -y openjdk-17-jre-headless`)")
    mvn = require_tool("mvn", "install Maven (Debian: `apt-get install -y maven`)")
    home = lib.parent
    home.mkdir(parents=True, exist_ok=True)
    pom = resources.files("horus.ops.stack").joinpath("kafka-pom.xml").read_text()
    (home / "pom.xml").write_text(pom.replace("@KAFKA_VERSION@", version))
    if lib.exists():
        shutil.rmtree(lib)
    result = subprocess.run(
        [mvn, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={lib}"],
        cwd=home,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(
            f"Maven could not fetch Apache Kafka {version} (exit {result.returncode}).\n"
            f"{(result.stdout + result.stderr)[-2000:]}\n"
            "Fix: check that Maven Central is reachable, or set HORUS_KAFKA_VERSION to a published version."
        )
    done.write_text(version)
    return lib


def server_properties(data_dir: Path, port: int, controller_port: int, partitions: int) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(partitions),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "12",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


class KafkaBroker:
    name = "kafka"

    def __init__(self, state_dir: Path, cache_dir: Path, version: str, partitions: int, procs: ProcessTable):
        self.home = state_dir / "kafka"
        self.cache_dir = cache_dir
        self.version = version
        self.partitions = partitions
        self.procs = procs

    def bootstrap(self, port: int) -> str:
        return f"127.0.0.1:{port}"

    def start(self, port: int, controller_port: int) -> None:
        lib = ensure_jars(self.cache_dir, self.version)
        java = require_tool("java", "install Java 17+ (Debian: `apt-get install -y openjdk-17-jre-headless`)")
        data = self.home / "data"
        config = self.home / "server.properties"
        log4j = self.home / "log4j2.properties"
        self.home.mkdir(parents=True, exist_ok=True)
        config.write_text(server_properties(data, port, controller_port, self.partitions))
        log4j.write_text(resources.files("horus.ops.stack").joinpath("kafka-log4j2.properties").read_text())
        jvm = [
            java,
            HEAP,
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{lib}/*",
        ]
        if not (data / "meta.properties").exists():
            cluster_id = uuid.uuid4().hex[:22]
            fmt = subprocess.run(
                jvm + ["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(config)],
                capture_output=True,
                text=True,
            )
            if fmt.returncode != 0:
                raise StackError(f"Formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
        record = self.procs.spawn(self.name, jvm + ["kafka.Kafka", str(config)])
        wait_until(
            lambda: self.healthy(port)[0],
            timeout=90,
            what="Kafka",
            log=Path(record.log),
            alive=lambda: self.procs.live(self.name) is not None,
        )

    def healthy(self, port: int) -> tuple[bool, str]:
        from confluent_kafka.admin import AdminClient  # imported late: `stack` commands start fast

        # log_level 0: "connection refused" while the broker boots is expected, not worth printing
        admin = AdminClient({"bootstrap.servers": self.bootstrap(port), "socket.timeout.ms": 2000, "log_level": 0})
        try:
            cluster = admin.describe_cluster(request_timeout=3).result(timeout=4)
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported as detail
            return False, f"not answering on {self.bootstrap(port)} ({exc.__class__.__name__})"
        return bool(cluster.nodes), f"{len(cluster.nodes)} broker(s), Kafka {self.version}"

    def reset_data(self) -> None:
        shutil.rmtree(self.home / "data", ignore_errors=True)

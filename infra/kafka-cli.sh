#!/usr/bin/env bash
# Kafka's own command-line tools against the local broker, without a Kafka
# tarball: the jars come from Maven Central (org.apache.kafka:kafka-tools, same
# version as the broker), fetched once by `infra/stack.sh tools-lib`.
#
#   infra/kafka-cli.sh <tool> [args...]
#   infra/kafka-cli.sh topics --list
#   infra/kafka-cli.sh topics --create --topic t1 --partitions 3
#   infra/kafka-cli.sh consumer-groups --describe --group g1
#   infra/kafka-cli.sh console-consumer --topic t1 --from-beginning --max-messages 5
#   infra/kafka-cli.sh org.apache.kafka.tools.SomeTool [args...]   (any main class)
#
# --bootstrap-server 127.0.0.1:${CRMPILOT_KAFKA_PORT:-9092} is added when the
# tool takes one and none is given.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BOOTSTRAP="127.0.0.1:${CRMPILOT_KAFKA_PORT:-9092}"

tools() {
    cat <<'EOF'
topics              org.apache.kafka.tools.TopicCommand
consumer-groups     org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
console-producer    org.apache.kafka.tools.ConsoleProducer
console-consumer    org.apache.kafka.tools.consumer.ConsoleConsumer
get-offsets         org.apache.kafka.tools.GetOffsetShell
configs             kafka.admin.ConfigCommand
delete-records      org.apache.kafka.tools.DeleteRecordsCommand
log-dirs            org.apache.kafka.tools.LogDirsCommand
transactions        org.apache.kafka.tools.TransactionsCommand
metadata-quorum     org.apache.kafka.tools.MetadataQuorumCommand
groups              org.apache.kafka.tools.GroupsCommand
share-groups        org.apache.kafka.tools.consumer.group.ShareGroupCommand
features            org.apache.kafka.tools.FeatureCommand
broker-api-versions org.apache.kafka.tools.BrokerApiVersionsCommand
leader-election     org.apache.kafka.tools.LeaderElectionCommand
dump-log            kafka.tools.DumpLogSegments
EOF
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    echo
    echo "tools:"
    tools | sed 's/^/  /'
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help|help) usage; exit 0 ;; esac

tool="$1"; shift
if [[ "$tool" == *.* ]]; then
    main_class="$tool"
else
    main_class="$(tools | awk -v t="$tool" '$1 == t {print $2}')"
    [ -n "$main_class" ] || { echo "kafka-cli: unknown tool '$tool'" >&2; usage >&2; exit 2; }
fi

args=("$@")
case "$tool" in
    dump-log|*.*) ;;
    *)
        has_bootstrap=0
        for a in "$@"; do
            case "$a" in
                --bootstrap-server|--bootstrap-server=*|--bootstrap-controller|--bootstrap-controller=*|--help|-h|--version)
                    has_bootstrap=1 ;;
            esac
        done
        [ "$has_bootstrap" = 1 ] || args=(--bootstrap-server "$BOOTSTRAP" "$@")
        ;;
esac

lib="$("$SCRIPT_DIR/stack.sh" tools-lib)"
exec java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/tools-log4j2.properties" \
    -cp "$lib/*" "$main_class" "${args[@]}"

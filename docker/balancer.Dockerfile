# The balancer and the metrics store of docker/compose.scale.yaml, from
# Debian 12's packages (HAProxy 2.6, Prometheus), as deploy/ was tested with.
# Their configs are mounted from deploy/ by the compose file.
#   docker build -f docker/balancer.Dockerfile --target haproxy -t pagoda-haproxy .

FROM debian:12-slim AS haproxy
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
USER haproxy
EXPOSE 8000 8404
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-db", "-W", "-f", "/etc/haproxy/haproxy.cfg"]

FROM debian:12-slim AS prometheus
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
USER prometheus
EXPOSE 9090
CMD ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/var/lib/prometheus/metrics2"]

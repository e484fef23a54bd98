# The lag exporter's image (`superticks monitor`): superticks and its dependencies installed from
# wheels made on the host (containers here cannot reach the package index), on a minimal
# Debian bookworm with its python3 (cluster/scripts/build-image.sh python).
# Built by cluster/scripts/build-exporter-image.sh; `superticks cluster up` builds it when needed.
ARG BASE=superticks/python:local
FROM ${BASE}
COPY wheels /wheels
RUN python3 -m venv /opt/superticks \
 && /opt/superticks/bin/pip install --quiet --no-index --no-cache-dir --find-links /wheels superticks \
 && rm -rf /wheels
ENV PATH=/opt/superticks/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1
USER nobody
WORKDIR /tmp
ENTRYPOINT ["superticks"]
CMD ["monitor", "--host", "127.0.0.1", "--port", "9110"]

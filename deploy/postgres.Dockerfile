# PostgreSQL 15 from Debian's packages on the same locally built base (no image pulls).
ARG BASE=tjp-base:bookworm
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /run/postgresql
COPY deploy/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
COPY deploy/init-databases.sql /etc/tjp/init-databases.sql
ENV PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data/pgdata
USER postgres
EXPOSE 5432
HEALTHCHECK --interval=5s --timeout=3s --retries=10 CMD ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"]
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]

"""What several benchmark scripts share."""


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named at the end of `url` unless it exists."""
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def env_port(name: str) -> int:
    """The port the environment variable `name` gives, or 0: a free one the system picks."""
    import os

    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else 0

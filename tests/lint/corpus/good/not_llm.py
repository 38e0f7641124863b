"""Ordinary code that shares words with LLM code and must not be flagged."""

import socket
import sqlite3
import time
from string import Template

import requests

PROMPT_TOOLKIT_STYLE = {"prompt": "ansigreen bold"}
EMAIL_TEMPLATE = Template("Hello $name, your order $order has shipped.")
DEFAULT_TIMEOUT = None  # for sqlite: wait forever on a locked database
max_tokens = 10_000  # a tokenizer limit in a search index


class Prompt:
    def __init__(self, message: str, timeout: float | None = None) -> None:
        self.message = message
        self.timeout = timeout

    def ask(self) -> str:
        return input(self.message)


def serve(port: int) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            continue
        conn.close()


def download(url: str) -> bytes:
    for attempt in range(3):
        try:
            return requests.get(url, timeout=30).content
        except requests.RequestException:
            time.sleep(attempt)
    raise RuntimeError(url)


def query(db: str) -> list:
    connection = sqlite3.connect(db, timeout=600)
    return connection.execute("select 1").fetchall()

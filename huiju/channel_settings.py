"""Every channel's settings: the block named after the channel in a source's configuration.

A source declares its channel (``channel: ftp``) and, in a block of that name (``ftp: {...}``),
how the platform reaches it; :data:`SETTINGS` maps each channel to the model that validates the
block when the registry loads, so a mistake is reported with its file and key before anything
runs. The address and the credentials are never here: they are the source's Airflow Connection.

This module is what the registry imports of the channels: models only (pydantic), nothing that
collects or lands. It sits beside ``huiju/channels/`` (the collection code), not in it, so that
the registry, which every channel's landing reads, never depends on the channels package.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from datetime import date, timedelta
from types import MappingProxyType
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from huiju.schema import StrictModel

# --- files dropped in the inbox -------------------------------------------------------------------


class InboxSettings(StrictModel):
    """Inbox sources need no settings beyond the file ones every file channel has."""


# --- file drops on a department's server (FTP, FTPS, SFTP) ----------------------------------------


class DropSettings(StrictModel):
    """The ``ftp:`` / ``sftp:`` block of a source: where the files are and when one is complete.

    ``max_files``: complete files taken per run at most (the rest wait for the next run);
    ``name_encoding``: how the server encodes file *names* (a file's content is the source's
    ``encoding``); ``timeout``: seconds to wait for the server on any one operation; ``attempts``:
    tries per operation (see :class:`huiju_connectors.retry.RetryPolicy`).
    """

    renamed_keys: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"timeout_seconds": "timeout", "encoding": "name_encoding", "batch_size": "max_files"})

    directory: str = "."
    completeness: Literal["marker", "rename"] = "marker"
    marker_suffixes: tuple[str, ...] = (".done", ".ok")
    grace_minutes: float = Field(default=120, gt=0, le=7 * 24 * 60)
    after_success: Literal["move", "leave"] = "move"
    processed_dir: str = "processed"
    max_files: int = Field(default=100, ge=1, le=10_000)
    name_encoding: str = "utf-8"
    timeout: float = Field(default=60, gt=0, le=3600)
    attempts: int = Field(default=4, ge=1, le=20)
    # Cap (see README "Caps"): a larger file is not downloaded; the department is told.
    max_download_mb: float = Field(default=2048, gt=0, le=100 * 1024)

    @property
    def max_download_bytes(self) -> int:
        """``max_download_mb`` in bytes, as the connectors take it."""
        return int(self.max_download_mb * 1024**2)

    @field_validator("name_encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (use utf-8, or gbk for many Windows servers)") from None
        return value

    @field_validator("marker_suffixes")
    @classmethod
    def _suffixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one marker suffix is needed, e.g. [.done]")
        bad = [s for s in value if not re.fullmatch(r"\.[A-Za-z0-9_-]{1,16}", s)]
        if bad:
            raise ValueError(f"marker suffixes must look like .done or .ok, not {', '.join(map(repr, bad))}")
        return value

    @field_validator("processed_dir")
    @classmethod
    def _processed(cls, value: str) -> str:
        if not value.strip() or ".." in value.split("/") or "\\" in value:
            raise ValueError("processed_dir must be a folder name or path on the server without '..'")
        return value

    @property
    def grace(self) -> timedelta:
        """The grace period as a timedelta."""
        return timedelta(minutes=self.grace_minutes)


class FtpSettings(DropSettings):
    """The ``ftp:`` block: a drop, over FTPS by default.

    Explicit FTPS (``AUTH TLS``) with the server certificate and host name verified against
    ``ca_file`` (or the system trust store) is the default; verification cannot be turned off.
    ``tls: false`` (plain FTP: password and files unencrypted) must be written out, and
    ``huiju check-config`` warns about it.
    """

    directory: str = "/"
    tls: bool = True
    ca_file: str | None = None  # PEM bundle of the CA that signed the server's certificate

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> FtpSettings:
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is only used with tls: true (FTPS)")
        return self


# An OpenSSH public key line, optionally preceded by a known_hosts host pattern.
_PIN = re.compile(r"^(\S+\s+)?(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)\s+[A-Za-z0-9+/]+=*(\s.*)?$")


class SftpSettings(DropSettings):
    """The ``sftp:`` block: a drop, plus host keys to pin beside the Connection's extra ``host_key``."""

    host_keys: tuple[str, ...] = ()

    @field_validator("host_keys")
    @classmethod
    def _pins_look_like_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pin in value:
            if not _PIN.match(pin.strip()):
                raise ValueError(f"{pin[:40]!r} is not an OpenSSH public key line (e.g. 'ssh-ed25519 AAAA…')")
        return value


# --- web services (REST/JSON, SOAP) -----------------------------------------------------------------


class IncrementalSettings(StrictModel):
    """Incremental reads by an updated-since parameter (inclusive, ordered by update time)."""

    since_param: str = Field(min_length=1)
    updated_at_field: str = Field(min_length=1)
    key_fields: tuple[str, ...] = Field(min_length=1)
    initial_since: str | None = None


class PaginationSettings(StrictModel):
    """How the interface pages (see ``huiju_connectors.paging.Pagination``)."""

    kind: Literal["page", "offset", "cursor"] = "page"
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = Field(default=1, ge=0)
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_cursor_path: str = "next_cursor"


class HmacHeaderSettings(StrictModel):
    """Header names of an HMAC-signing gateway, when they differ from the common ones."""

    app_key: str = "X-App-Key"
    timestamp: str = "X-Timestamp"
    nonce: str = "X-Nonce"
    signature: str = "X-Signature"


class WebServiceSettings(StrictModel):
    """What the ``rest:`` and ``soap:`` blocks share: paging, increments, timeouts, retries, trust, drift.

    ``timeout``: seconds to wait for an answer (``connect_timeout``: for the connection itself);
    ``attempts``: tries per request (see :class:`huiju_connectors.retry.RetryPolicy`); ``ca_file``:
    a PEM file (relative to ``config/``) with the government CA that signed the department's
    certificate — TLS is always verified; ``drift``: what a page whose fields differ from the
    configured ones does (``warn``: lands, with warnings; ``hold``: held for a steward);
    ``known_fields``: fields the interface sends that are not mapped in ``columns`` and are not
    drift (they are kept in ``_extra``); the incremental fields are known automatically.
    """

    renamed_keys: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"read_timeout": "timeout", "max_attempts": "attempts", "ca_bundle": "ca_file"})

    page_size: int = Field(default=100, ge=1, le=10_000)
    params: dict[str, str] = Field(default_factory=dict)
    incremental: IncrementalSettings | None = None
    connect_timeout: float = Field(default=10.0, gt=0)
    timeout: float = Field(default=60.0, gt=0)
    attempts: int = Field(default=5, ge=1, le=20)
    ca_file: str | None = None
    drift: Literal["warn", "hold"] = "warn"
    known_fields: tuple[str, ...] = ()
    # Caps (see README "Caps"): past one, the run stops with an error naming the source and the cap.
    max_pages: int = Field(default=10_000, ge=1, le=1_000_000)
    max_page_mb: float = Field(default=64, gt=0, le=1024)
    max_page_records: int = Field(default=100_000, ge=1, le=1_000_000)

    @property
    def caps(self) -> dict[str, int]:
        """The caps as the connectors take them (``huiju_connectors.rest.Caps``)."""
        return {"max_pages": self.max_pages, "max_page_bytes": int(self.max_page_mb * 1024**2),
                "max_page_records": self.max_page_records}


class RestSettings(WebServiceSettings):
    """The ``rest:`` block of a source.

    ``auth``: ``token`` (bearer token: the Connection's password, or ``extra.token``),
    ``hmac`` (app key = login, app secret = password), ``oauth2`` (client credentials:
    client id = login, secret = password, token endpoint ``token_url`` — a path on the same
    host or a full URL), ``none``. ``signature`` (hmac only): ``sha256`` (HMAC-SHA256, default) or
    ``sm3`` (HMAC-SM3, 国密, as the provincial platform signs), as a push target's.
    """

    path: str = Field(min_length=1)
    records_path: str = ""
    pagination: PaginationSettings = PaginationSettings()
    auth: Literal["token", "hmac", "oauth2", "none"] = "none"
    signature: Literal["sha256", "sm3"] = "sha256"
    hmac_headers: HmacHeaderSettings = HmacHeaderSettings()
    token_url: str | None = None
    scope: str | None = None
    ok_path: str | None = None
    ok_values: tuple[int | str, ...] = (0, "0", 200, "200")
    rate_limit: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _oauth2_needs_token_url(self) -> RestSettings:
        if self.auth == "oauth2" and not self.token_url:
            raise ValueError("auth: oauth2 needs token_url (the token endpoint)")
        return self


class WindowSettings(StrictModel):
    """A date-windowed operation (see ``huiju_connectors.soap.DateWindow``): windows of ``days``
    days from ``start``, each read once after it closes."""

    from_param: str = Field(min_length=1)
    to_param: str = Field(min_length=1)
    start: date
    days: int = Field(default=1, ge=1, le=366)
    inclusive_end: bool = True


class SoapSettings(WebServiceSettings):
    """The ``soap:`` block of a source.

    ``wsdl``: the vendored WSDL, relative to ``config/`` (e.g. ``wsdl/gaj_penalty.wsdl``);
    ``operation``: the document/literal operation to call; ``endpoint_path``: its path on the
    Connection's host; ``records_path``: where the records are in the result
    (``penalties.penalty``). Faults with a code in ``business_fault_codes`` go back to the
    department (not retried); ``retry_fault_codes`` are retried like server faults. An
    operation is paged, and either incremental by ``incremental`` (updated-since) or
    date-windowed by ``window`` (a run for day D reads the windows closed by the end of D).
    """

    wsdl: str = Field(min_length=1)
    operation: str = Field(min_length=1)
    endpoint_path: str = "/"
    records_path: str = Field(min_length=1)
    page_param: str = "pageNo"
    size_param: str = "pageSize"
    first_page: int = Field(default=1, ge=0)
    window: WindowSettings | None = None
    username_token: bool = False
    password_digest: bool = False
    service_name: str | None = None
    port_name: str | None = None
    business_fault_codes: tuple[str, ...] = ()
    retry_fault_codes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_kind_of_increment(self) -> SoapSettings:
        if self.incremental is not None and self.window is not None:
            raise ValueError("use either incremental (updated-since) or window (date windows), not both")
        return self

    @field_validator("wsdl")
    @classmethod
    def _wsdl_is_a_wsdl_file(cls, value: str) -> str:
        if "://" in value:
            raise ValueError("must be a file vendored under config/ (e.g. wsdl/<department>.wsdl), never a URL")
        if not value.endswith((".wsdl", ".xml")):
            raise ValueError("must name a .wsdl (or .xml) file")
        return value


# --- public web pages (网络爬虫) ---------------------------------------------------------------------


class WebPaginationSettings(StrictModel):
    """How a list pages (see ``huiju_connectors.web.WebPagination``).

    ``param``: ``?<page_param>=N`` from ``first_page``; ``pattern``: the first page is ``path``, the
    next ones ``pattern`` with ``{page}`` counting from ``first_page`` (``index_{page}.html``: most
    government CMSs write ``index.html``, ``index_1.html``, ``index_2.html`` …); ``next_link``: the
    link whose text is one of ``next_texts`` (下一页); ``none``: one page.
    """

    kind: Literal["none", "param", "pattern", "next_link"] = "none"
    page_param: str = Field(default="page", min_length=1)
    first_page: int = Field(default=1, ge=0)
    pattern: str | None = None
    next_texts: tuple[str, ...] = ("下一页", "下页", "next")

    @model_validator(mode="after")
    def _pattern_for_pattern(self) -> WebPaginationSettings:
        if self.kind == "pattern" and (self.pattern is None or "{page}" not in self.pattern):
            raise ValueError("kind pattern needs a pattern holding {page}, e.g. index_{page}.html")
        if self.kind != "pattern" and self.pattern is not None:
            raise ValueError("pattern only applies to kind pattern")
        return self


class WebSettings(StrictModel):
    """The ``web:`` block of a source: a department's public list pages (行政处罚公示, 红黑名单), read as HTML tables.

    ``path``: the list's first page on the Connection's site; ``pagination``; ``rate_limit``: requests
    per second at most (default 1; the site's robots.txt ``Crawl-delay`` wins when slower; ``null``
    — no spacing — must be written out and ``check-config`` warns); ``user_agent``: how the crawler
    names itself (robots.txt rules for that name apply). The table is the page's table whose header
    holds the source's ``columns`` for every required field; caps as for web services.
    """

    renamed_keys: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"read_timeout": "timeout", "max_attempts": "attempts", "ca_bundle": "ca_file"})

    path: str = Field(min_length=1)
    pagination: WebPaginationSettings = WebPaginationSettings()
    rate_limit: float | None = Field(default=1.0, gt=0, le=1000)
    user_agent: str = Field(default="HuijuCrawler/1.0 (government data aggregation platform)", min_length=3)
    connect_timeout: float = Field(default=10.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)
    attempts: int = Field(default=4, ge=1, le=20)
    ca_file: str | None = None
    # Caps (see README "Caps"): past one, the run stops with an error naming the source, the page and the cap.
    max_pages: int = Field(default=1_000, ge=1, le=100_000)
    max_page_mb: float = Field(default=8, gt=0, le=256)
    max_page_records: int = Field(default=10_000, ge=1, le=1_000_000)

    @field_validator("path")
    @classmethod
    def _path_on_the_site(cls, value: str) -> str:
        if "://" in value:
            raise ValueError("must be a path on the Connection's site (e.g. /xxgk/xzcf/index.html), not a URL")
        return value

    @property
    def caps(self) -> dict[str, int]:
        """The caps as the connector takes them (``huiju_connectors.web.WebCaps``)."""
        return {"max_pages": self.max_pages, "max_page_bytes": int(self.max_page_mb * 1024**2),
                "max_page_records": self.max_page_records}


# --- front-end databases (前置库) -------------------------------------------------------------------


class WatermarkSettings(StrictModel):
    """An update-time column or an increasing id."""

    column: str
    type: Literal["timestamp", "integer"] = "timestamp"
    timezone: str = "Asia/Shanghai"  # what naive timestamps mean (the source session's time zone)
    # Look-back window: each run reads again from this far below the stored watermark (seconds for a
    # timestamp, ids for an integer), so a row whose transaction committed after a run with an older
    # watermark is still seen; rows re-read are recognised by key and content and not landed twice.
    # 0: no window (the fast COPY paths); with a window rows pass through Python to be compared.
    lookback: int = Field(default=0, ge=0, le=7 * 24 * 3600)


class ExchangeFlagSettings(StrictModel):
    """The exchange protocol's flag column and the values the department and the platform agree on."""

    column: str
    pending: str = "0"
    taken: str = "1"
    failed: str = "2"
    taken_at_column: str | None = None
    reason_column: str | None = None


class TlsSettings(StrictModel):
    """TLS to the source, on by default: ``verify`` checks the chain and the host name (PostgreSQL
    ``verify-full``; MySQL checks the host name even without a ``ca_file``, against the system roots).

    ``enabled: false`` (an unencrypted connection) or ``verify: false`` must be written out, and
    ``huiju check-config`` warns about either.
    """

    enabled: bool = True
    verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class FrontDbSettings(StrictModel):
    """The source's ``frontdb:`` block."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dialect: Literal["postgresql", "mysql", "oracle"]
    table: str = Field(min_length=1)
    table_schema: str | None = Field(default=None, alias="schema")
    key_columns: list[str] = Field(min_length=1)
    mode: Literal["watermark", "exchange_flag", "snapshot"] = "watermark"
    watermark: WatermarkSettings | None = None
    exchange_flag: ExchangeFlagSettings | None = None
    batch_size: int = Field(default=50_000, ge=1, le=1_000_000)
    detect_mojibake: bool = True
    tls: TlsSettings = TlsSettings()

    @model_validator(mode="after")
    def _mode_has_its_block(self) -> FrontDbSettings:
        if self.mode == "watermark" and self.watermark is None:
            raise ValueError("mode watermark needs a watermark: {column: …, type: timestamp|integer} block")
        if self.mode == "exchange_flag" and self.exchange_flag is None:
            raise ValueError("mode exchange_flag needs an exchange_flag: {column: …} block")
        return self

    @property
    def technical_columns(self) -> list[str]:
        """Columns the channel itself uses: kept in ``_extra`` without a drift warning."""
        cols = list(self.key_columns)
        if self.watermark is not None:
            cols.append(self.watermark.column)
        if self.exchange_flag is not None:
            flag = self.exchange_flag
            cols += [c for c in (flag.column, flag.taken_at_column, flag.reason_column) if c]
        return cols


# --- the departments' portal (Excel文件上传, 人工录入) -----------------------------------------------


class PortalSettings(StrictModel):
    """The ``portal:`` block of a source: which ways in the departments' portal offers, and their limits.

    ``upload``: Excel文件上传 with the source's template (read with the source's file settings);
    ``manual_entry``: 人工录入, a form generated from the dataset's fields; ``max_upload_mb``: the
    largest workbook accepted; ``max_entry_records``: records in one manual entry at most.
    """

    upload: bool = True
    manual_entry: bool = True
    max_upload_mb: float = Field(default=20, gt=0, le=500)
    max_entry_records: int = Field(default=50, ge=1, le=500)

    @model_validator(mode="after")
    def _some_way_in(self) -> PortalSettings:
        if not (self.upload or self.manual_entry):
            raise ValueError("a portal source needs upload or manual_entry (or both)")
        return self

    @property
    def max_upload_bytes(self) -> int:
        """The upload size cap in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)


#: Each channel's settings model, validating the source's block named after the channel.
SETTINGS: Mapping[str, type[StrictModel]] = MappingProxyType({
    "inbox": InboxSettings,
    "ftp": FtpSettings,
    "sftp": SftpSettings,
    "rest": RestSettings,
    "soap": SoapSettings,
    "frontdb": FrontDbSettings,
    "portal": PortalSettings,
    "web": WebSettings,
})

#: Every channel, each with its settings model here and its collection module ``huiju.channels.<name>``.
CHANNELS: tuple[str, ...] = tuple(SETTINGS)
#: Channels that deliver files (read with the source's file settings: format, encoding, header row …);
#: the portal's uploads are such files (its manual entries are records, landed as such).
FILE_CHANNELS = ("inbox", "ftp", "sftp", "portal")


class ChannelUnavailable(LookupError):
    """No channel of that name."""


def settings_model(channel: str) -> type[StrictModel]:
    """The pydantic model of a channel's settings block."""
    try:
        return SETTINGS[channel]
    except KeyError:
        raise ChannelUnavailable(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}") from None

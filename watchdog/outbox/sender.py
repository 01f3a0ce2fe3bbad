"""Sending: claim due messages, render them once, send through their channel, record the result.

At least once, never twice but for the message in flight: a message is leased before it is
sent and completed (fenced on the lease) after; a sender that dies in between leaves a lease
that expires, and the message is sent again as the next attempt, which history shows. Transient
failures back off exponentially with jitter up to a cap; permanent ones, and the last allowed
attempt, make the message `dead` and the admin is told.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import random
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from watchdog.channels import Attachment, Channel, Outgoing, Permanent, Result, Sent, Transient
from watchdog.config import Settings
from watchdog.outbox.attachments import alert_specs, build_attachments, report_specs
from watchdog.outbox.compose import alert_cases, recipient_of, webhook_cases
from watchdog.outbox.render import Renderer, RenderError, mask_name
from watchdog.outbox.views import MessageView, ReportView
from watchdog.store import Store
from watchdog.store.links import block_chats, move_chat, shared_secret, unlink_chat
from watchdog.store.outbox import (
    DEAD,
    FAILED,
    SENT,
    Claimed,
    Completion,
    NewMessage,
    Rendering,
    claim_messages,
    complete,
    enqueue_message,
    release,
    save_rendered,
)

log = logging.getLogger(__name__)

BACKOFF_CAP = timedelta(hours=1)
# A message is not sent once this share of its lease has passed since the claim (it would risk
# another sender taking it over mid-send): the rest of its batch is released and claimed again.
_LEASE_USE = 0.8
ACK_LINK_LIFETIME = timedelta(days=30)


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    resent: int = 0  # sent again after a lease expired (attempt > 1 without a recorded failure)
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retrying += other.retrying
        self.dead += other.dead
        self.resent += other.resent
        self.errors.extend(other.errors)


@dataclass
class _Batch:
    """A claimed batch, rendered and saved: what to send, and what is dead before sending."""

    claimed: list[Claimed]
    ready: list[Claimed]
    rendered: dict[int, Rendering]
    dead: list[Completion]
    claimed_at: float  # time.monotonic() of the claim: the lease runs from here
    attachments: dict[int, tuple[Attachment, ...]] = field(default_factory=dict)


def backoff(
    attempt: int, base: timedelta, rng: random.Random, retry_after: float | None
) -> timedelta:
    """base * 2^(attempt-1), capped, with full jitter in its upper half; never sooner than the
    peer asked (`retry_after`)."""
    step = min(BACKOFF_CAP, base * (2 ** max(0, attempt - 1)))
    delay = step * rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


class Sender:
    """Delivers what the outbox holds. Database calls run in threads; sends run concurrently
    (up to `concurrency`), each channel pacing itself."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        renderer: Renderer,
        channels: dict[str, Channel],
        clock: Callable[[], datetime],
        *,
        owner: str | None = None,
        lease: timedelta | None = None,
        batch: int = 100,
        concurrency: int = 16,
        rng: random.Random | None = None,
        observe: Callable[[str, float, Result], None] | None = None,
    ):
        self.store = store
        self.settings = settings
        self.renderer = renderer
        self.channels = channels
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{secrets.token_hex(4)}"
        self.lease = lease or settings.config.delivery.lease
        self.batch = batch
        self.concurrency = concurrency
        self.rng = rng or random.Random()
        self.observe = observe  # (channel, seconds, result) of every send: metrics
        self._ack_key: bytes | None = None
        self._stopping = False
        self._unrecorded: list[Completion] = []

    def stop(self) -> None:
        """Claim nothing more; what is in flight finishes."""
        self._stopping = True

    # ----- the loop ----------------------------------------------------------------------

    async def deliver_due(
        self, max_batches: int | None = None, only: list[int] | None = None
    ) -> DeliveryReport:
        """Send everything due now (with `only`: those messages alone), batch after batch,
        until nothing is due.

        The next batch is claimed, rendered and saved in a thread while the last sends of this
        one are in flight (once all of it is under way: earlier, the rendering would compete
        with the sends for the interpreter, and the next batch's leases would run longer
        before it is sent), so the channels (and the Telegram limiter's slots) do not wait for
        the database between batches. When that claim finds nothing, one more is made once
        this batch is done: what was enqueued meanwhile (the admin's notice of a dead message)
        still goes.
        """
        report = DeliveryReport()
        batches = 0
        await self._flush_unrecorded()
        upcoming: asyncio.Task[_Batch | None] | None = None

        def prefetch() -> None:
            nonlocal upcoming
            if upcoming is None and not self._stopping:
                upcoming = asyncio.create_task(asyncio.to_thread(self._prepare, only))

        try:
            batch = None if self._stopping else await asyncio.to_thread(self._prepare, only)
            while batch is not None:
                batches += 1
                more = max_batches is None or batches < max_batches
                report.add(await self._deliver(batch, prefetch if more else None))
                if upcoming is None:  # the last batch allowed, or stopping
                    break
                batch, upcoming = await upcoming, None
                if self._stopping:  # shutting down: give the prefetched batch back untouched
                    await self._give_back(batch, None)
                    break
                if batch is None:  # claim once more: what was enqueued while this batch went
                    batch = await asyncio.to_thread(self._prepare, only)
        finally:
            if upcoming is not None:  # an error (the database away) stopped the loop
                await self._give_back(None, upcoming)
        return report

    async def _give_back(
        self, batch: _Batch | None, upcoming: asyncio.Task[_Batch | None] | None
    ) -> None:
        """Release a claimed batch that will not be sent (or the one a prefetch still claims);
        when that fails too (the database away), its leases expire and it goes later."""
        try:
            if upcoming is not None:
                batch = await upcoming
            if batch is not None:
                ids = [c.id for c in batch.claimed]
                await asyncio.to_thread(release, self.store, self.owner, ids, self.clock())
        except Exception as e:
            log.debug("prefetched batch not released (its leases will expire): %s", e)

    def _prepare(self, only: list[int] | None) -> _Batch | None:
        """Claim a batch, render what is not rendered yet and save it (in a thread)."""
        now, started = self.clock(), time.monotonic()
        claimed = claim_messages(self.store, self.owner, now, self.lease, self.batch, only)
        if not claimed:
            return None
        max_attempts = self.settings.config.delivery.max_attempts
        dead: list[Completion] = []
        ready: list[Claimed] = []
        for c in claimed:
            if c.attempts > max_attempts:  # leases expired that often: a sender keeps dying
                dead.append(
                    Completion(c.id, DEAD, "permanent", f"gave up after {c.attempts - 1} attempts")
                )
            else:
                ready.append(c)
        rendered, broken = self._render(ready, now)
        save_rendered(self.store, self.owner, rendered)
        by_id = {r.id: r for r in rendered}
        files = self._attachments([c for c in ready if c.id not in broken], by_id, broken)
        for c in ready:
            if c.id in broken:  # a template the admin broke: the admin hears of it below
                dead.append(Completion(c.id, DEAD, "permanent", broken[c.id]))
        ready = [c for c in ready if c.id not in broken]
        return _Batch(claimed, ready, by_id, dead, started, files)

    def _attachments(
        self, ready: list[Claimed], rendered: dict[int, Rendering], broken: dict[int, str]
    ) -> dict[int, tuple[Attachment, ...]]:
        """The files each message carries, made again on every attempt from the specs its
        content keeps (watchdog.outbox.attachments); a report whose file cannot be made is
        `broken` (dead, the admin told), a letter that cannot be made is left out."""
        out: dict[int, tuple[Attachment, ...]] = {}
        for c in ready:
            r = rendered.get(c.id)
            if r is None or not (r.content or {}).get("attach"):
                continue
            known = {i.record.case_code: (i.record, i.events) for i in c.items}
            built = build_attachments(
                r.content,
                self.settings,
                self.store,
                masked=c.channel in self.renderer.mask_on,
                known=known,
            )
            if built.fatal is not None:
                broken[c.id] = built.fatal
            elif built.attachments:
                out[c.id] = built.attachments
        return out

    async def _deliver(
        self, batch: _Batch, under_way: Callable[[], None] | None = None
    ) -> DeliveryReport:
        """Send a batch and record the outcomes; `under_way` is called once every send of it
        has started (the next batch may be prepared)."""
        report = DeliveryReport(claimed=len(batch.claimed))
        kinds = {c.id: c for c in batch.claimed}
        if batch.dead:
            report.dead += len(batch.dead)
            await self._record(batch.dead, kinds, report)
        await self._send_all(batch, kinds, report, under_way)
        return report

    async def _send_all(
        self,
        batch: _Batch,
        kinds: dict[int, Claimed],
        report: DeliveryReport,
        under_way: Callable[[], None] | None,
    ) -> None:
        """Send the batch, up to `concurrency` at a time, recording outcomes as they come.

        A send keeps its slot until its outcome is recorded, so at most `concurrency` messages
        (one chunk) are ever sent but unrecorded: a sender that dies leaves at most that many
        to go again. Outcomes are recorded (one `complete()`) once half the slots wait for it,
        or when nothing else is sending; the other sends go on while it is written, so the
        channel (and the Telegram limiter's slots) does not wait for the database.
        """
        queue = deque(batch.ready)
        sending: set[asyncio.Task[Result]] = set()
        finished: list[tuple[Claimed, Result]] = []
        errors: list[BaseException] = []
        wake = asyncio.Event()
        unrecorded = 0  # slots held: sending, or sent and not recorded yet
        group = max(1, self.concurrency // 2)
        lease_left = self.lease.total_seconds() * _LEASE_USE

        def sent(task: asyncio.Task[Result], c: Claimed) -> None:
            sending.discard(task)
            if not task.cancelled():
                if task.exception() is not None:  # a bug outside the channel: stop the batch
                    errors.append(task.exception())  # type: ignore[arg-type]
                else:
                    finished.append((c, task.result()))
            wake.set()

        try:
            while True:
                if queue and (self._stopping or time.monotonic() - batch.claimed_at > lease_left):
                    # shutting down, or the lease nearly over: give back what is not sent yet
                    rest = [c.id for c in queue]
                    queue.clear()
                    await asyncio.to_thread(release, self.store, self.owner, rest, self.clock())
                    report.claimed -= len(rest)
                while queue and not errors and unrecorded < self.concurrency:
                    c = queue.popleft()
                    task = asyncio.create_task(
                        self._send(c, batch.rendered.get(c.id), batch.attachments.get(c.id, ()))
                    )
                    task.add_done_callback(functools.partial(sent, c=c))
                    sending.add(task)
                    unrecorded += 1
                if not queue and under_way is not None:
                    under_way()
                    under_way = None
                if finished and not errors and (len(finished) >= group or not sending):
                    chunk, finished = finished, []
                    outcomes = self._outcomes([c for c, _ in chunk], [r for _, r in chunk], report)
                    try:  # the sends in flight go on meanwhile
                        await self._record(outcomes, kinds, report)
                    except Exception as e:  # kept in _unrecorded: stop here, like the database
                        errors.append(e)
                    unrecorded -= len(chunk)
                    continue
                if not sending:
                    break
                wake.clear()
                await wake.wait()
        finally:
            for task in list(sending):  # cancelled from outside: nothing more goes
                task.cancel()
        if errors:
            if finished:  # sent while the database was away: recorded first when it is back
                chunk = finished
                self._unrecorded.extend(
                    self._outcomes([c for c, _ in chunk], [r for _, r in chunk], report)
                )
            raise errors[0]

    def _outcomes(
        self, chunk: list[Claimed], results: list[Result], report: DeliveryReport
    ) -> list[Completion]:
        now = self.clock()
        max_attempts = self.settings.config.delivery.max_attempts
        out: list[Completion] = []
        for c, result in zip(chunk, results, strict=True):
            if isinstance(result, Sent):
                report.sent += 1
                if c.attempts > 1:
                    report.resent += 1
                out.append(
                    Completion(
                        c.id, SENT, "sent", result.note, result.provider_id, None, result.moved_to
                    )
                )
            elif isinstance(result, Transient) and c.attempts < max_attempts:
                report.retrying += 1
                delay = backoff(
                    c.attempts, self.settings.config.delivery.backoff, self.rng, result.retry_after
                )
                out.append(
                    Completion(c.id, FAILED, "transient", result.error, next_attempt_at=now + delay)
                )
            else:
                report.dead += 1
                outcome = "transient" if isinstance(result, Transient) else "permanent"
                error = result.error
                if isinstance(result, Transient):
                    error = f"{error} (attempt {c.attempts} of {max_attempts})"
                unlink = isinstance(result, Permanent) and result.unlink
                out.append(Completion(c.id, DEAD, outcome, error, unlink=unlink))
        return out

    async def _record(
        self, completions: list[Completion], kinds: dict[int, Claimed], report: DeliveryReport
    ) -> None:
        """Record what sending did. If the database is away, the completions are kept and
        recorded first thing when it answers again (still fenced on our lease), so an outage
        during a send does not make those messages go twice."""
        now = self.clock()
        try:
            done = set(await asyncio.to_thread(complete, self.store, self.owner, now, completions))
        except Exception:
            self._unrecorded.extend(completions)
            raise
        lost = [c.id for c in completions if c.id not in done]
        if lost:
            log.warning("messages %s: lease lost before completion; another sender has them", lost)
        for c in completions:
            if c.id not in done:
                continue
            claimed = kinds.get(c.id)
            if c.address and claimed is not None:
                await asyncio.to_thread(move_chat, self.store, claimed.address, c.address)
            if c.status == DEAD and claimed is not None:
                report.errors.append(f"message {c.id}: {c.error}")
                await asyncio.to_thread(self._tell_admin, claimed, c.error or "", now)
                if c.unlink:
                    await asyncio.to_thread(self._unlinked, claimed, now)

    async def _flush_unrecorded(self) -> None:
        if not self._unrecorded:
            return
        pending, self._unrecorded = self._unrecorded, []
        try:
            done = await asyncio.to_thread(complete, self.store, self.owner, self.clock(), pending)
        except Exception:
            self._unrecorded = pending + self._unrecorded
            raise
        log.info("recorded %d send(s) made while the database was away", len(done))

    async def _send(
        self, c: Claimed, rendering: Rendering | None, attachments: tuple[Attachment, ...] = ()
    ) -> Result:
        channel = self.channels.get(c.channel)
        if channel is None:
            return Permanent(f"channel {c.channel} is not configured")
        if rendering is None:
            return Permanent("nothing to send: the message has no cases left")
        message = Outgoing(
            id=c.id,
            channel=c.channel,
            address=c.address,
            recipient=recipient_of(self.settings, c.recipient),
            stages=tuple(c.stages),
            subject=rendering.subject,
            text=rendering.text,
            html=rendering.html,
            created_at=c.created_at,
            message_id=rendering.message_id,
            cases=tuple((rendering.content or {}).get("cases", ())),
            attachments=attachments,
            ack_data=self.ack_data(c.id) if c.kind == "alert" else None,
            attempt=c.attempts,
        )
        started = time.monotonic()
        try:
            result = await channel.send(message)
        except Exception as e:  # a channel bug must not lose the message: retry later
            log.exception("channel %s failed on message %d", c.channel, c.id)
            result = Transient(f"{type(e).__name__}: {e}")
        if self.observe is not None:
            self.observe(c.channel, time.monotonic() - started, result)
        if isinstance(result, Sent):
            log.info(
                "sent #%d to %s via %s (attempt %d): %s",
                c.id,
                c.recipient,
                c.channel,
                c.attempts,
                message.subject,
            )
        else:
            log.warning("message #%d to %s via %s: %s", c.id, c.recipient, c.channel, result.error)
        return result

    # ----- rendering -----------------------------------------------------------------------

    def _render(
        self, claimed: list[Claimed], now: datetime
    ) -> tuple[list[Rendering], dict[int, str]]:
        out = []
        broken: dict[int, str] = {}
        tz = self.settings.default_calendar.tz
        for c in claimed:
            message_id = c.message_id or self.message_id(c.id)
            if c.rendered:
                out.append(
                    Rendering(c.id, c.subject or "", c.text or "", c.html, c.content, message_id)
                )
                continue
            if c.kind == "report":
                try:
                    out.append(self._render_report(c, now, message_id))
                except RenderError as e:
                    log.error("report message %d cannot be rendered: %s", c.id, e)
                    broken[c.id] = f"template error: {e}"
                except (ValueError, KeyError, TypeError) as e:  # its content, not a template
                    log.error("report message %d has no valid report in it: %r", c.id, e)
                    broken[c.id] = f"not a valid report message: {type(e).__name__}: {e}"
                continue
            if not c.items:
                continue
            cases = alert_cases(self.settings, c, now)
            view = MessageView(
                kind="alert",
                channel=c.channel,
                recipient=recipient_of(self.settings, c.recipient),
                now=now,
                tz=tz,
                cases=tuple(cases),
                ack_url=self.ack_link(c.id, now) if c.channel in ("email", "file") else None,
            )
            try:
                r = self.renderer.render(view)
            except RenderError as e:
                log.error("message %d cannot be rendered: %s", c.id, e)
                broken[c.id] = f"template error: {e}"
                continue
            content: dict[str, Any] = {"cases": webhook_cases(cases, tz, mask_name)}
            specs = alert_specs(c.items, now)
            if specs:
                content["attach"] = specs
            out.append(Rendering(c.id, r.subject, r.text, r.html, content, message_id))
        return out, broken

    def _render_report(self, c: Claimed, now: datetime, message_id: str) -> Rendering:
        """A scheduled report (watchdog.reports.schedule enqueues it with its parameters in
        `content`): subject and text from the `_report` templates, the XLSX attached."""
        spec = dict(c.content or {})
        report = ReportView(
            name=str(spec["name"]),
            every=str(spec["every"]),
            start=_day(spec["start"]),
            end=_day(spec["end"]),
            by=str(spec.get("by") or "unit"),
            metric=str(spec.get("metric") or "portal"),
        )
        view = MessageView(
            kind="report",
            channel=c.channel,
            recipient=recipient_of(self.settings, c.recipient),
            now=now,
            tz=self.settings.default_calendar.tz,
            report=report,
        )
        r = self.renderer.render(view)
        spec["attach"] = report_specs(now)
        return Rendering(c.id, r.subject, r.text, r.html, spec, message_id)

    def message_id(self, message_id: int) -> str:
        email = self.settings.channels.email
        sender = email.from_ if email is not None else "watchdog@localhost"
        domain = sender.rsplit("@", 1)[-1].strip("> ") or "localhost"
        return f"<tthc-watchdog.{message_id}@{domain}>"

    # ----- acknowledgement buttons ---------------------------------------------------------

    def _key(self) -> bytes:
        if self._ack_key is None:
            secret = shared_secret(self.store, "ack", secrets.token_hex(32), self.clock())
            self._ack_key = secret.encode()
        return self._ack_key

    def ack_data(self, message_id: int) -> str:
        """Callback data of the "Đã nhận" button: the message id, signed (<= 64 bytes)."""
        sig = hmac.new(self._key(), f"ack:{message_id}".encode(), hashlib.sha256).hexdigest()
        return f"ack:{message_id}:{sig[:20]}"

    def ack_link(self, message_id: int, now: datetime) -> str | None:
        """The e-mail's signed "Đã nhận" link, when the daemon's address is known
        (`http.public_url`); it expires with ACK_LINK_LIFETIME."""
        public = self.settings.config.http.public_url
        if not public:
            return None
        from watchdog.http.acklink import ack_url

        return ack_url(public, self._key(), message_id, now + ACK_LINK_LIFETIME)

    def check_ack(self, data: str) -> int | None:
        """The message id a button's data names, when its signature is ours."""
        parts = data.split(":")
        if len(parts) != 3 or parts[0] != "ack" or not parts[1].isdigit():
            return None
        expected = self.ack_data(int(parts[1]))
        return int(parts[1]) if hmac.compare_digest(expected, data) else None

    # ----- telling people -----------------------------------------------------------------

    def _tell_admin(self, dead: Claimed, error: str, now: datetime) -> None:
        if dead.kind == "notice":  # a notice about a notice would loop
            log.error("admin notice %d could not be delivered: %s", dead.id, error)
            return
        text = (
            f"Thông báo số {dead.id} gửi {dead.recipient} qua {dead.channel} "
            f"({dead.address}) không gửi được sau {dead.attempts} lần: {error}.\n\n"
            "Trong một giờ chỉ báo một lần: các thông báo không gửi được khác trong giờ này "
            "không báo lại. Xem tất cả: watchdog history --status dead"
        )
        hour = now.astimezone(self.settings.default_calendar.tz).strftime("%Y%m%d%H")
        for address, channel in self._admin_addresses():
            enqueue_message(
                self.store,
                NewMessage(
                    kind="notice",
                    recipient=address,
                    channel=channel,
                    address=address,
                    subject=f"[tthc-watchdog] Thông báo không gửi được (số {dead.id})",
                    text=text,
                    dedup_key=f"dead:{address}:{hour}",  # one notice per admin per hour
                ),
                now,
                now,
            )

    def _admin_addresses(self) -> list[tuple[str, str]]:
        cfg = self.settings.config
        people = cfg.admin_email or cfg.supervisors
        channels = self.settings.channels
        out = []
        for who in people:
            official = self.settings.officials.get(who)
            email = official.email if official else (who if "@" in who else None)
            if channels.email is not None and email:
                out.append((email, "email"))
            elif channels.file is not None:
                out.append((email or who, "file"))
        return out

    def _unlinked(self, c: Claimed, now: datetime) -> None:
        officials = unlink_chat(self.store, c.address)
        # a chat written in the configuration cannot be unlinked there: mark it unreachable
        configured = [
            o.id
            for o in self.settings.config.officials
            if o.telegram == c.address and o.id not in officials
        ]
        block_chats(self.store, configured, now)
        for who in officials + configured:
            official = self.settings.officials.get(who)
            if official is None or not official.email or self.settings.channels.email is None:
                continue
            enqueue_message(
                self.store,
                NewMessage(
                    kind="notice",
                    recipient=who,
                    channel="email",
                    address=official.email,
                    subject="[tthc-watchdog] Telegram không còn nhận được thông báo",
                    text=(
                        f"Kính gửi {official.name},\n\nBot Telegram của tthc-watchdog không gửi "
                        "được tin vào cuộc trò chuyện đã liên kết (bot bị chặn hoặc cuộc trò "
                        "chuyện không còn). Thông báo sẽ gửi qua thư điện tử. Để liên kết lại, "
                        "xin mã mới từ quản trị viên rồi gửi /start MÃ cho bot."
                    ),
                    dedup_key=f"unlinked:{c.address}:{who}:{c.id}",
                ),
                now,
                now,
            )


def _day(value: Any) -> date:
    """A date written into a message's content (ISO date or instant; a date as it is)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)

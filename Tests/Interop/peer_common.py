"""What the FastStream peers of the interop tests share: an in-memory tracer and the JSON they write."""
import asyncio
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def make_provider():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def spans(exporter):
    result = []
    for span in exporter.get_finished_spans():
        context = span.get_span_context()
        result.append({
            "name": span.name,
            "traceId": format(context.trace_id, "032x"),
            "spanId": format(context.span_id, "016x"),
            "parentSpanId": format(span.parent.span_id, "016x") if span.parent else None,
        })
    return result


def links(exporter):
    """The links of the finished spans (a batch consumer links its span to the producers' spans)."""
    result = []
    for span in exporter.get_finished_spans():
        for link in span.links:
            result.append({
                "spanId": format(span.get_span_context().span_id, "016x"),
                "traceId": format(link.context.trace_id, "032x"),
                "linkedSpanId": format(link.context.span_id, "016x"),
            })
    return result


def value(body):
    if isinstance(body, bytes):
        return {"type": "bytes", "value": body.hex()}
    return {"type": type(body).__name__, "value": body}


async def wait_until(event, timeout, received, diagnosis=lambda: {}):
    """Waits for `event`; past `timeout` seconds, says on stderr what had arrived by then (the
    messages handled, and what `diagnosis` returns: the client's own counters), then raises, so
    a failed test tells a message that never reached the client from a client too slow to
    handle it in time."""
    try:
        await asyncio.wait_for(event.wait(), timeout=timeout)
    except asyncio.TimeoutError:
        print(
            f"TIMEOUT after {timeout} s: {len(received)} message(s) handled; client: {diagnosis()}",
            file=sys.stderr,
            flush=True,
        )
        raise

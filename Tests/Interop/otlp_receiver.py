"""A real OTLP trace receiver for the CourierOTLP tests.

Serves OTLP/HTTP (POST /v1/traces, application/x-protobuf) and OTLP/gRPC
(opentelemetry.proto.collector.trace.v1.TraceService/Export) on 127.0.0.1, on free ports, decodes
every request with opentelemetry-proto's generated classes, and appends one JSON line per request
to --out: {"transport", "headers", "request": MessageToDict(ExportTraceServiceRequest)}.

Prints "READY <http port> <grpc port>" once both listen; runs until stdin closes.
--reject N answers every export with a partial success rejecting N spans.
"""

import argparse
import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

lock = threading.Lock()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--reject", type=int, default=0)
    args = parser.parse_args()
    out = open(args.out, "a", buffering=1)

    def response():
        answer = trace_service_pb2.ExportTraceServiceResponse()
        if args.reject:
            answer.partial_success.rejected_spans = args.reject
            answer.partial_success.error_message = "rejected by the test receiver"
        return answer

    def record(transport, headers, request):
        line = json.dumps({"transport": transport, "headers": headers, "request": MessageToDict(request)})
        with lock:
            out.write(line + "\n")
            out.flush()

    class HTTPHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            request = trace_service_pb2.ExportTraceServiceRequest()
            request.ParseFromString(body)
            record("http", {k.lower(): v for k, v in self.headers.items()}, request)
            payload = response().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_):
            pass

    class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            headers = {k: v for k, v in context.invocation_metadata()}
            record("grpc", headers, request)
            return response()

    http_server = ThreadingHTTPServer(("127.0.0.1", 0), HTTPHandler)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    print(f"READY {http_server.server_address[1]} {grpc_port}", flush=True)
    sys.stdin.read()
    grpc_server.stop(0)
    http_server.shutdown()


if __name__ == "__main__":
    main()

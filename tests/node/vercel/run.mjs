// The real Vercel AI SDK (ai 6) with experimental_telemetry, its spans exported over OTLP/HTTP
// protobuf. Driven by tests/test_frameworks_vercel.py; the model is a FAKE OpenAI-compatible
// server (tests/support/fake_openai.py), the only faked part.
//   FAKE_OPENAI_URL        the fake provider's base URL (.../v1)
//   OTLP_TRACES_URL        where to send the spans (.../v1/traces)
//   DRIFTLINE_API_KEY      the collector's API key
// Runs two calls: generateText with a tool (the model asks for it, then answers) and streamText.
import { createOpenAI } from "@ai-sdk/openai";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const exporter = new OTLPTraceExporter({
  url: env("OTLP_TRACES_URL"),
  headers: { Authorization: `Bearer ${env("DRIFTLINE_API_KEY")}` },
});
const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({
    "service.name": "vercel-app",
    "service.version": "2.0.0",
    "deployment.environment.name": "test",
  }),
  spanProcessors: [new BatchSpanProcessor(exporter)],
});
// register(): the SDK's spans find their parent through the context manager it installs.
provider.register();
const tracer = provider.getTracer("vercel-app");

const openai = createOpenAI({ baseURL: env("FAKE_OPENAI_URL"), apiKey: "test-key" });
const model = openai.chat("gpt-4o-mini");
const telemetry = (functionId) => ({
  isEnabled: true,
  functionId,
  metadata: { userId: "user-7", sessionId: "session-42" },
  tracer,
});

const getWeather = tool({
  description: "Weather of a city.",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, forecast: "Sunny, 21 C" }),
});

const agent = await generateText({
  model,
  system: "You answer weather questions.",
  prompt: "What is the weather in Paris?",
  tools: { get_weather: getWeather },
  stopWhen: stepCountIs(3),
  experimental_telemetry: telemetry("weather-agent"),
});

const stream = streamText({
  model,
  prompt: "What is the capital of France?",
  experimental_telemetry: telemetry("capital-stream"),
});
let streamed = "";
for await (const part of stream.textStream) streamed += part;

await provider.forceFlush();
await provider.shutdown();
process.stdout.write(JSON.stringify({ agent: agent.text, streamed }) + "\n");

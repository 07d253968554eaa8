#include "server/metrics_text.h"

#include <sstream>

#include "common/huge_pages.h"

namespace pagoda {
namespace {

void header(std::ostringstream& os, const char* name, const char* type, const char* help) {
  os << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

void scalar(std::ostringstream& os, const char* name, const char* type, const char* help, double v) {
  header(os, name, type, help);
  os << name << " " << v << "\n";
}

void histogram(std::ostringstream& os, const char* name, const char* help, const Histogram& h) {
  header(os, name, "histogram", help);
  const Histogram::Snapshot s = h.snapshot();
  for (size_t i = 0; i < s.bounds.size(); ++i)
    os << name << "_bucket{le=\"" << s.bounds[i] << "\"} " << s.cumulative[i] << "\n";
  os << name << "_bucket{le=\"+Inf\"} " << s.count << "\n";
  os << name << "_sum " << s.sum << "\n";
  os << name << "_count " << s.count << "\n";
}

// A label value as the exposition format writes it: backslash, quote and
// newline escaped.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

}  // namespace

std::string render_metrics(const EngineStats& st, int64_t http_connections, const std::string& replica) {
  std::ostringstream os;
  os.precision(10);
  header(os, "pagoda_replica_info", "gauge", "Always 1; its labels name this replica (server.replica_id) and version.");
  os << "pagoda_replica_info{replica=\"" << label_value(replica) << "\",version=\"" << PAGODA_VERSION << "\"} 1\n";
  const KvUsage kv = st.kv_usage();
  scalar(os, "pagoda_requests_running", "gauge", "Requests in the running batch.", st.requests_running.value());
  scalar(os, "pagoda_requests_waiting", "gauge", "Requests waiting to be scheduled.", st.requests_waiting.value());
  scalar(os, "pagoda_http_connections", "gauge", "Open HTTP connections.", double(http_connections));
  scalar(os, "pagoda_process_resident_memory_bytes", "gauge",
         "Resident memory of the process (VmRSS): weights plus the KV pages written so far.",
         double(resident_memory_bytes()));
  scalar(os, "pagoda_kv_usage_ratio", "gauge", "Share of KV pages held by requests (0 to 1).", kv.usage_ratio);
  scalar(os, "pagoda_kv_pages", "gauge", "Usable KV pages in the pool.", double(kv.pages_total));
  scalar(os, "pagoda_kv_pages_in_use", "gauge", "KV pages held by at least one request.", double(kv.pages_in_use));
  scalar(os, "pagoda_kv_slots_allocated", "gauge", "Token slots in the KV pages held by requests.",
         double(kv.allocated_slots));
  scalar(os, "pagoda_kv_slots_unused", "gauge",
         "Token slots in held KV pages that hold no token yet (partly filled last pages).", double(kv.unused_slots));
  scalar(os, "pagoda_kv_pages_cached_free", "gauge", "Free KV pages still holding a reusable cached prefix.",
         double(kv.pages_cached_free));
  scalar(os, "pagoda_prefix_cache_queries_tokens_total", "counter", "Prompt tokens looked up in the prefix cache.",
         double(kv.prefix_query_tokens));
  scalar(os, "pagoda_prefix_cache_hits_tokens_total", "counter", "Prompt tokens served from the prefix cache.",
         double(kv.prefix_hit_tokens));
  scalar(os, "pagoda_prefix_cache_partial_hits_total", "counter",
         "Prefix lookups that copied the matching leading rows of a partly matching cached page.",
         double(kv.prefix_partial_hits));
  scalar(os, "pagoda_kv_evictions_total", "counter", "Cached KV pages reused for other content.", double(kv.evictions));
  scalar(os, "pagoda_preemptions_total", "counter", "Requests preempted (pages freed, recomputed later).",
         st.preemptions.value());
  scalar(os, "pagoda_late_grammar_masks_total", "counter",
         "Structured-output token masks not ready in time for their step's sampling (the request sat out until they "
         "were).",
         st.late_grammar_masks.value());
  scalar(os, "pagoda_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", st.prompt_tokens.value());
  scalar(os, "pagoda_generation_tokens_total", "counter", "Generated tokens.", st.generation_tokens.value());
  scalar(os, "pagoda_engine_steps_total", "counter", "Engine steps run.", st.steps.value());
  scalar(os, "pagoda_requests_rejected_queue_full_total", "counter", "Requests refused because the queue was full.",
         st.rejected_queue_full.value());
  header(os, "pagoda_requests_finished_total", "counter", "Finished requests by reason.");
  for (FinishReason r : {FinishReason::kStop, FinishReason::kLength, FinishReason::kAbort, FinishReason::kError})
    os << "pagoda_requests_finished_total{reason=\"" << finish_reason_name(r) << "\"} "
       << st.finished[static_cast<size_t>(r)].value() << "\n";
  histogram(os, "pagoda_time_to_first_token_seconds", "Time from arrival to the first generated token.",
            st.time_to_first_token);
  histogram(os, "pagoda_inter_token_latency_seconds", "Time between consecutive generated tokens.",
            st.inter_token_latency);
  histogram(os, "pagoda_e2e_request_latency_seconds", "Time from arrival to the end of a request.", st.e2e_latency);
  histogram(os, "pagoda_request_queue_time_seconds", "Time from arrival to the first scheduled step.", st.queue_time);
  histogram(os, "pagoda_engine_step_duration_seconds", "Duration of one engine step.", st.step_time);
  histogram(os, "pagoda_batch_tokens", "Tokens computed per engine step.", st.batch_tokens);
  histogram(os, "pagoda_batch_sequences", "Sequences per engine step.", st.batch_seqs);
  return os.str();
}

}  // namespace pagoda

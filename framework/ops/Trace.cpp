#include "framework/ops/Trace.h"

namespace anvil::ops {
namespace {
thread_local OpTracer* t_tracer = nullptr;
}

TraceScope::TraceScope(OpTracer& tracer) : previous_(t_tracer) { t_tracer = &tracer; }
TraceScope::~TraceScope() { t_tracer = previous_; }
OpTracer* current_tracer() { return t_tracer; }

}  // namespace anvil::ops

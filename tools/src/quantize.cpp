// lowbit-quantize: the checkpoint driver and the command line (see quantize.hpp and
// tools/README.md). A runtime scheme name is turned into a template instance by with_scheme; each
// policy is a lowbit::pipeline, so the tool only moves tensors between files and the library.
#include "lowbit_tools/quantize.hpp"

#include "lowbit/quantizers/pipeline.hpp"
#include "lowbit/quantizers/rtn.hpp"
#include "lowbit_tools/checkpoint.hpp"
#include "lowbit_tools/schemes.hpp"

#if LOWBIT_TOOLS_GPTQ
#include "lowbit/quantizers/gptq.hpp"
#endif

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <regex>
#include <span>
#include <sys/stat.h>

namespace lowbit::tools {

namespace {

constexpr std::array<std::string_view, 4> policy_names = {"rtn", "rtn-mse", "hadamard", "gptq"};

std::string scheme_list() {
  std::string s;
  for_each_scheme([&]<class S>(std::string_view alias) {
    if (!s.empty()) s += ", ";
    s += alias;
  });
  return s;
}

// A tensor of the input and what happens to it.
struct plan_item {
  const tensor_info* src = nullptr;
  bool quantize = false;
  std::string note;
  quantized_entry entry;
  std::vector<tensor_spec> planes;
  const tensor_info* calib = nullptr;
};

// Calibration statistics of the last calibration tensor used (q, k and v projections usually
// share one input, so their statistics are computed once).
struct calibration_cache {
  std::string name;
  std::optional<activation_stats> stats;
#if LOWBIT_TOOLS_GPTQ
  std::optional<hessian> hess;
#endif

  void load(const safetensors_view& f, const tensor_info& t, std::uint64_t cols, bool want_hessian) {
    if (name == t.name && (want_hessian ? has_hessian() : stats.has_value())) return;
    name.clear();
    stats.reset();
    const std::vector<float> x = f.to_float(t);
    const std::size_t tokens = x.size() / cols;
    if (want_hessian) {
#if LOWBIT_TOOLS_GPTQ
      hess.reset();
      hess.emplace(cols);
      hess->add(x, tokens);
#endif
    } else {
      stats.emplace(cols);
      stats->observe(x, tokens);
    }
    name = t.name;
  }
  bool has_hessian() const {
#if LOWBIT_TOOLS_GPTQ
    return hess.has_value();
#else
    return false;
#endif
  }
};

std::uint64_t lowest_power_of_two(std::uint64_t n) { return n & (~n + 1); }

// The metadata and planes of one weight under scheme S and the chosen policy.
template <scheme S>
void plan_weight(plan_item& it, const quantize_options& opt, const std::string& pipeline_name) {
  quantized_entry& e = it.entry;
  e.name = it.src->name;
  e.scheme = opt.scheme;
  e.scheme_id = scheme_name<S>();
  e.rows = it.src->shape[0];
  e.cols = it.src->shape[1];
  e.source_dtype = std::string(dtype_name(it.src->type));
  e.policy = opt.policy;
  e.pipeline = pipeline_name;
  if (opt.policy == "hadamard")
    e.input.push_back({input_step::kind::hadamard, opt.seed, lowest_power_of_two(e.cols),
                       opt.seed ? e.name + ".hadamard_signs" : std::string()});
  if (opt.policy == "gptq" && opt.act_order && S::gran == granularity::group)
    e.input.push_back({input_step::kind::gather, 0, 0, e.name + ".input_permutation"});
  it.planes = planes_of<S>(e);
}

// Quantizes one weight with the chosen policy through the library's pipeline.
template <scheme S>
quantized_linear<S> run_policy(const quantize_options& opt, std::span<const float> w, std::size_t rows,
                               std::size_t cols, calibration_cache& cache) {
  if (opt.policy == "rtn") return pipeline{rtn_absmax{}}.quantize<S>(w, rows, cols);
  if (opt.policy == "rtn-mse")
    return pipeline{rtn_mse{}}.quantize<S>(w, rows, cols, cache.stats ? &*cache.stats : nullptr);
  if (opt.policy == "hadamard") return pipeline{hadamard{.seed = opt.seed}, rtn_absmax{}}.quantize<S>(w, rows, cols);
#if LOWBIT_TOOLS_GPTQ
  gptq_absmax g;
  g.options.act_order = opt.act_order;
  g.options.percdamp = opt.damp;
  return pipeline{g}.quantize<S>(w, rows, cols, nullptr, *cache.hess);
#else
  throw lowbit::invalid_argument("--policy gptq: this build has no GPTQ (Eigen 3.4 was not found)");
#endif
}

std::string pipeline_name(const std::string& policy) {
  if (policy == "rtn") return pipeline<rtn_absmax>::name();
  if (policy == "rtn-mse") return pipeline<rtn_mse>::name();
  if (policy == "hadamard") return pipeline<hadamard, rtn_absmax>::name();
#if LOWBIT_TOOLS_GPTQ
  return pipeline<gptq_absmax>::name();
#else
  return "gptq";
#endif
}

template <class T>
std::span<const std::uint8_t> as_bytes(std::span<const T> v) {
  return {reinterpret_cast<const std::uint8_t*>(v.data()), v.size_bytes()};
}

// Writes the planes of a quantized layer in planes_of's order; checks the layer's input steps
// are the ones planned.
template <scheme S>
void write_layer(safetensors_writer& w, const quantized_linear<S>& layer, const quantized_entry& e) {
  const qmatrix<S>& q = layer.weight;
  w.write(q.codes());
  w.write(as_bytes(q.scales()));
  if constexpr (S::has_zero_point) w.write(q.zero_points());
  if constexpr (S::has_tensor_scale) {
    const float t = q.tensor_scale();
    w.write(as_bytes(std::span<const float>(&t, 1)));
  }
  if constexpr (qmatrix<S>::double_quantized) {
    w.write(as_bytes(q.scale_absmax()));
    const float o = q.scale_offset();
    w.write(as_bytes(std::span<const float>(&o, 1)));
  }
  const auto& steps = layer.input.steps();
  if (steps.size() != e.input.size())
    throw lowbit::error("internal: the pipeline's input transform differs from the plan for \"" + e.name + "\"");
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const input_step& st = e.input[i];
    if (st.op == input_step::kind::hadamard) {
      if (!steps[i].rotate || steps[i].rotate->block() != st.block)
        throw lowbit::error("internal: unexpected rotation for \"" + e.name + "\"");
      if (st.tensor.empty()) continue;
      std::vector<std::int8_t> signs(e.cols, 1);
      for (std::size_t j = 0; j < signs.size() && steps[i].rotate->randomized(); ++j)
        signs[j] = static_cast<std::int8_t>(steps[i].rotate->signs()[j]);
      w.write(as_bytes(std::span<const std::int8_t>(signs)));
    } else {
      if (steps[i].gather.size() != e.cols) throw lowbit::error("internal: unexpected gather for \"" + e.name + "\"");
      w.write(as_bytes(std::span<const std::uint32_t>(steps[i].gather)));
    }
  }
}

std::regex compile_regex(const std::string& flag, const std::string& pattern) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw lowbit::invalid_argument(flag + " \"" + pattern + "\" is not a valid regular expression: " + e.what());
  }
}

void check_options(const quantize_options& opt) {
  if (!with_scheme(opt.scheme, []<class S>() {}))
    throw lowbit::invalid_argument("unknown scheme \"" + opt.scheme + "\"; known: " + scheme_list());
  if (std::find(policy_names.begin(), policy_names.end(), opt.policy) == policy_names.end())
    throw lowbit::invalid_argument("unknown policy \"" + opt.policy + "\"; known: rtn, rtn-mse, hadamard, gptq");
#if !LOWBIT_TOOLS_GPTQ
  if (opt.policy == "gptq")
    throw lowbit::invalid_argument("--policy gptq: this build has no GPTQ (Eigen 3.4 was not found)");
#endif
  if (opt.policy == "gptq" && !opt.calib)
    throw lowbit::invalid_argument("--policy gptq needs calibration activations (--calib FILE)");
  if (opt.calib && opt.policy != "gptq" && opt.policy != "rtn-mse")
    throw lowbit::invalid_argument("--calib is used by the gptq and rtn-mse policies only, not by " + opt.policy);
  if (!(opt.damp > 0 && std::isfinite(opt.damp)))
    throw lowbit::invalid_argument("--damp " + std::to_string(opt.damp) + " must be positive and finite");
}

} // namespace

const tensor_info* find_calibration(const safetensors_view& calib, const std::string& name, std::uint64_t cols) {
  if (const tensor_info* t = calib.find(name)) return t;
  constexpr std::string_view suffix = ".weight";
  if (name.ends_with(suffix))
    if (const tensor_info* t = calib.find(name.substr(0, name.size() - suffix.size()))) return t;
  return calib.find("input." + std::to_string(cols));
}

std::vector<tensor_report> quantize_checkpoint(const safetensors_view& in, std::ostream& out,
                                               const quantize_options& opt, const progress_callback& progress) {
  check_options(opt);
  const std::regex include = compile_regex("--include", opt.include);
  const std::optional<std::regex> exclude =
      opt.exclude.empty() ? std::nullopt : std::optional<std::regex>(compile_regex("--exclude", opt.exclude));
  for (const auto& [key, value] : in.metadata())
    if (key.starts_with(metadata_prefix) || key == format_key)
      throw lowbit::error("the input already holds lowbit-quantized weights (metadata \"" + key + "\")");

  // Plan: what happens to each tensor, every output tensor's size, and the calibration inputs.
  const std::string pipe = pipeline_name(opt.policy);
  std::vector<plan_item> plan;
  std::vector<tensor_spec> specs;
  std::vector<std::pair<std::string, std::string>> metadata = in.metadata();
  metadata.emplace_back(format_key, format_version);
  for (const tensor_info& t : in.tensors()) {
    plan_item it;
    it.src = &t;
    const bool selected = std::regex_search(t.name, include) && !(exclude && std::regex_search(t.name, *exclude));
    if (!selected)
      it.note = "not selected";
    else if (!is_float_weight(t.type))
      it.note = "dtype " + std::string(dtype_name(t.type)) + " is not F32/F16/BF16";
    else if (t.shape.size() != 2)
      it.note = std::to_string(t.shape.size()) + "-D, not a matrix";
    else if (t.elements() == 0)
      it.note = "empty";
    else
      it.quantize = true;
    if (it.quantize) {
      with_scheme(opt.scheme, [&]<class S>() { plan_weight<S>(it, opt, pipe); });
      if (opt.calib) {
        it.calib = find_calibration(*opt.calib, t.name, it.entry.cols);
        std::string want = "\"" + t.name + "\"";
        if (t.name.ends_with(".weight")) want += ", \"" + t.name.substr(0, t.name.size() - 7) + "\"";
        want += " or \"input." + std::to_string(it.entry.cols) + "\"";
        if (!it.calib) throw lowbit::error("no calibration tensor for \"" + t.name + "\": expected one named " + want);
        const tensor_info& c = *it.calib;
        if (!is_float_weight(c.type) || c.shape.empty() || c.shape.back() != it.entry.cols || c.elements() == 0)
          throw lowbit::error("calibration tensor \"" + c.name + "\" for \"" + t.name + "\" is " +
                              std::string(dtype_name(c.type)) + " " + c.shape_string() +
                              ", expected F32/F16/BF16 [tokens, " + std::to_string(it.entry.cols) + "]");
        it.note = "calibration \"" + c.name + "\"";
      }
      specs.insert(specs.end(), it.planes.begin(), it.planes.end());
      metadata.emplace_back(metadata_key(t.name), to_json(it.entry));
    } else {
      specs.push_back({t.name, t.type, t.shape});
    }
    plan.push_back(std::move(it));
  }
  {
    std::vector<std::string> names;
    for (const auto& s : specs) names.push_back(s.name);
    std::sort(names.begin(), names.end());
    const auto dup = std::adjacent_find(names.begin(), names.end());
    if (dup != names.end())
      throw lowbit::error("output tensor name \"" + *dup +
                          "\" would occur twice (an input tensor has the name of a quantized plane)");
  }

  safetensors_writer writer(out, specs, metadata);
  std::vector<tensor_report> reports;
  calibration_cache cache;
  for (const plan_item& it : plan) {
    const tensor_info& t = *it.src;
    tensor_report rep;
    rep.name = t.name;
    rep.dtype = std::string(dtype_name(t.type));
    rep.shape = t.shape;
    rep.note = it.note;
    if (!it.quantize) {
      writer.write(in.data(t));
    } else {
      try {
        const std::vector<float> w = in.to_float(t);
        const std::size_t rows = it.entry.rows, cols = it.entry.cols;
        if (it.calib) cache.load(*opt.calib, *it.calib, cols, opt.policy == "gptq");
        with_scheme(opt.scheme, [&]<class S>() {
          const quantized_linear<S> layer = run_policy<S>(opt, w, rows, cols, cache);
          write_layer(writer, layer, it.entry);
          rep.bits_per_weight = layer.weight.bits_per_weight();
          rep.error = measure_error(w, effective_weight(layer));
        });
      } catch (const lowbit::error& e) {
        throw lowbit::error("tensor \"" + t.name + "\": " + e.what());
      }
      rep.quantized = true;
    }
    reports.push_back(rep);
    if (progress) progress(reports.back(), reports.size(), plan.size());
  }
  writer.finish();
  return reports;
}

// ---- command line ----

namespace {

constexpr const char* usage_text =
    R"(usage: lowbit-quantize INPUT OUTPUT --scheme NAME [options]
       lowbit-quantize --check FILE [--reference INPUT]
       lowbit-quantize --list-schemes

Quantizes every 2-D F32/F16/BF16 tensor of the .safetensors file INPUT whose name matches
--include (and not --exclude) and writes OUTPUT (see tools/README.md for the naming convention).
Other tensors are copied unchanged.

  --scheme NAME       block format: see --list-schemes (required)
  --policy NAME       rtn (default), rtn-mse, hadamard, gptq
  --calib FILE        .safetensors of layer inputs [tokens, in_features] named like the weight,
                      the weight without ".weight", or "input.<in_features>"; required by gptq,
                      optional for rtn-mse (importance weights)
  --include REGEX     tensors to quantize (ECMAScript regex, searched; default "\.weight$")
  --exclude REGEX     tensors not to quantize (default: none)
  --seed N            Hadamard random-sign seed (default 1; 0: no random signs)
  --act-order         GPTQ: quantize columns by decreasing Hessian diagonal
  --damp X            GPTQ: damping fraction of mean(diag H) (default 0.01)
  --no-progress       no progress bar even on a terminal
  --check FILE        load every quantized weight of FILE back and print its table; with
                      --reference INPUT, the error against the original weights
Exit status: 0 success, 1 bad or unreadable input (the message says what and where), 2 usage.
)";

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string format_shape(const std::vector<std::uint64_t>& shape) {
  return tensor_info{"", dtype::U8, shape, 0, 0}.shape_string();
}

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

class table {
public:
  table(std::ostream& out, std::size_t name_width) : out_(out), w_(std::max<std::size_t>(name_width, 4)) {}

  void header() const { line("name", "shape", "scheme", "bits/weight", "SQNR dB", "max error"); }
  void row(const tensor_report& r, const std::string& scheme) const {
    if (!r.quantized) {
      line(r.name, format_shape(r.shape), "(copied " + r.dtype + ")", "", "", "");
      return;
    }
    line(r.name, format_shape(r.shape), scheme, format("%.3f", r.bits_per_weight),
         std::isinf(r.error.sqnr_db) ? std::string("inf") : format("%.2f", r.error.sqnr_db),
         format("%.3e", r.error.max_abs_error));
  }

private:
  void line(const std::string& name, const std::string& shape, const std::string& scheme, const std::string& bits,
            const std::string& sqnr, const std::string& err) const {
    std::string s = name;
    s.resize(std::max(s.size(), w_), ' ');
    s += "  " + pad(shape, 14) + "  " + pad(scheme, 16) + "  " + lpad(bits, 11) + "  " + lpad(sqnr, 8) + "  " +
         lpad(err, 10);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out_ << s << '\n';
  }
  static std::string pad(std::string s, std::size_t n) {
    s.resize(std::max(s.size(), n), ' ');
    return s;
  }
  static std::string lpad(const std::string& s, std::size_t n) {
    return s.size() >= n ? s : std::string(n - s.size(), ' ') + s;
  }
  std::ostream& out_;
  std::size_t w_;
};

std::string human_bytes(std::uint64_t n) {
  const char* unit[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  return format(u ? "%.1f" : "%.0f", v) + " " + unit[u];
}

std::uint64_t parse_u64(const std::string& flag, const std::string& s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty())
    throw usage_error(flag + " \"" + s + "\" is not a non-negative integer");
  return v;
}

double parse_double(const std::string& flag, const std::string& s) {
  double v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty())
    throw usage_error(flag + " \"" + s + "\" is not a number");
  return v;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int check_file(const std::string& path, const std::string& reference, std::ostream& out) {
  const safetensors_file f(path);
  std::optional<safetensors_file> ref;
  if (!reference.empty()) ref.emplace(reference);
  const std::vector<quantized_entry> entries = list_quantized(f.view());
  std::size_t width = 0;
  for (const auto& e : entries) width = std::max(width, e.name.size());
  const table tab(out, width);
  tab.header();
  for (const auto& e : entries) {
    tensor_report r;
    r.name = e.name;
    r.shape = {e.rows, e.cols};
    r.quantized = true;
    r.error.sqnr_db = std::nan("");
    r.error.max_abs_error = std::nan("");
    visit_quantized(f.view(), e.name, [&](const auto& layer) {
      r.bits_per_weight = layer.weight.bits_per_weight();
      if (!ref) return;
      const tensor_info& t = ref->view().at(e.name);
      if (t.elements() != e.rows * e.cols)
        throw lowbit::error("reference tensor \"" + e.name + "\" has shape " + t.shape_string() + ", expected [" +
                            std::to_string(e.rows) + ", " + std::to_string(e.cols) + "]");
      r.error = measure_error(ref->view().to_float(t), effective_weight(layer));
    });
    tab.row(r, e.scheme);
  }
  out << entries.size() << " quantized weight" << (entries.size() == 1 ? "" : "s") << " of " << path << " load back\n";
  return 0;
}

int run_quantize(const std::string& input, const std::string& output, const quantize_options& base,
                 const std::string& calib_path, bool progress_bar, std::ostream& out) {
  if (input == output || same_file(input, output)) throw usage_error("OUTPUT must differ from INPUT");
  const safetensors_file in(input);
  std::optional<safetensors_file> calib;
  quantize_options opt = base;
  if (!calib_path.empty()) {
    calib.emplace(calib_path);
    opt.calib = &calib->view();
  }
  check_options(opt);
  std::string id;
  with_scheme(opt.scheme, [&]<class S>() { id = scheme_name<S>(); });
  out << "lowbit-quantize: " << input << " -> " << output << "\nscheme " << opt.scheme << " (" << id << "), policy "
      << opt.policy << " (" << pipeline_name(opt.policy) << ")\n\n";
  std::size_t width = 0;
  for (const auto& t : in.view().tensors()) width = std::max(width, t.name.size());
  const table tab(out, std::min<std::size_t>(width, 64));
  tab.header();

  const std::string tmp = output + ".tmp";
  std::uint64_t in_bytes = 0, out_bytes = 0;
  std::size_t quantized = 0;
  try {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    if (!file) throw lowbit::error("cannot create \"" + tmp + "\"");
    const auto on_tensor = [&](const tensor_report& r, std::size_t done, std::size_t total) {
      if (progress_bar) out << "\r\033[K";
      tab.row(r, opt.scheme);
      if (progress_bar && done < total) {
        constexpr std::size_t bar = 30;
        const std::size_t fill = bar * done / total;
        out << '[' << std::string(fill, '#') << std::string(bar - fill, '.') << "] " << done << '/' << total;
      }
      out.flush();
    };
    const auto reports = quantize_checkpoint(in.view(), file, opt, on_tensor);
    file.close();
    if (!file) throw lowbit::error("cannot write \"" + tmp + "\"");
    for (const auto& r : reports) quantized += r.quantized;
    if (std::rename(tmp.c_str(), output.c_str()) != 0) throw lowbit::error("cannot rename to \"" + output + "\"");
  } catch (...) {
    if (progress_bar) out << "\r\033[K";
    std::remove(tmp.c_str());
    throw;
  }
  struct stat st {};
  if (::stat(input.c_str(), &st) == 0) in_bytes = static_cast<std::uint64_t>(st.st_size);
  if (::stat(output.c_str(), &st) == 0) out_bytes = static_cast<std::uint64_t>(st.st_size);
  out << "\nquantized " << quantized << " of " << in.view().tensors().size() << " tensors; " << human_bytes(in_bytes)
      << " -> " << human_bytes(out_bytes) << "; wrote " << output << '\n';
  return 0;
}

} // namespace

int quantize_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool terminal) {
  try {
    quantize_options opt;
    std::vector<std::string> positional;
    std::string calib, check, reference;
    bool scheme_given = false, list = false, progress = terminal;
    for (std::size_t i = 0; i < args.size(); ++i) {
      std::string a = args[i], value;
      bool has_value = false;
      if (a.starts_with("--") && a.find('=') != std::string::npos) {
        value = a.substr(a.find('=') + 1);
        a = a.substr(0, a.find('='));
        has_value = true;
      }
      const auto next = [&]() -> std::string {
        if (has_value) return value;
        if (i + 1 >= args.size()) throw usage_error(a + " needs a value");
        return args[++i];
      };
      const auto flag = [&] {
        if (has_value) throw usage_error(a + " takes no value");
      };
      if (a == "-h" || a == "--help") {
        out << usage_text;
        return 0;
      }
      if (a == "--list-schemes")
        flag(), list = true;
      else if (a == "--scheme")
        opt.scheme = next(), scheme_given = true;
      else if (a == "--policy")
        opt.policy = next();
      else if (a == "--calib")
        calib = next();
      else if (a == "--include")
        opt.include = next();
      else if (a == "--exclude")
        opt.exclude = next();
      else if (a == "--seed")
        opt.seed = parse_u64(a, next());
      else if (a == "--act-order")
        flag(), opt.act_order = true;
      else if (a == "--damp")
        opt.damp = parse_double(a, next());
      else if (a == "--no-progress")
        flag(), progress = false;
      else if (a == "--check")
        check = next();
      else if (a == "--reference")
        reference = next();
      else if (a.starts_with("-") && a != "-")
        throw usage_error("unknown option " + a);
      else
        positional.push_back(a);
    }
    if (list) {
      for_each_scheme([&]<class S>(std::string_view alias) {
        std::string a(alias);
        a.resize(std::max<std::size_t>(a.size(), 16), ' ');
        out << a << "  " << format("%6.3f", S::nominal_bits_per_weight()) << " bits/weight  " << scheme_name<S>()
            << '\n';
      });
      return 0;
    }
    if (!check.empty()) {
      if (!positional.empty()) throw usage_error("--check takes no INPUT/OUTPUT");
      return check_file(check, reference, out);
    }
    if (positional.size() != 2) throw usage_error("expected INPUT and OUTPUT");
    if (!scheme_given) throw usage_error("--scheme is required (see --list-schemes)");
    if (!reference.empty()) throw usage_error("--reference goes with --check");
    return run_quantize(positional[0], positional[1], opt, calib, progress, out);
  } catch (const usage_error& e) {
    err << "lowbit-quantize: " << e.what() << "\n(lowbit-quantize --help for usage)\n";
    return 2;
  } catch (const lowbit::invalid_argument& e) {
    err << "lowbit-quantize: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    err << "lowbit-quantize: error: " << e.what() << '\n';
    return 1;
  }
}

} // namespace lowbit::tools

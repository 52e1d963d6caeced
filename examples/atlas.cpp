// lowbit-atlas: the format atlas. For four weight distributions (Gaussian, Laplace, Student-t
// with 3 dof, and Gaussian with sparse large outliers) it quantizes one matrix into every named
// scheme under four round-to-nearest policies (absmax and MSE clipping search, each without and
// with a randomized Hadamard rotation) and records the weight SQNR against the storage cost in
// bits per weight. It writes atlas.svg (one panel per distribution, drawn by hand), atlas.md (a
// table per distribution) and atlas.csv (one row per distribution x scheme x policy).
//
// The samples come from lowbit's counter-based generator, so the atlas is the same on every
// platform, standard library and thread count. With a rotation, the reconstruction is rotated
// back before it is compared with the original weights.
//
//   lowbit-atlas [--out DIR] [--rows R] [--cols C]     (defaults: ., 512, 1024)
#include <lowbit/lowbit.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

double uniform(std::uint64_t stream, std::uint64_t i) { // in (0, 1)
  return (lowbit::random_bits((stream + 1) * 0xD1B54A32D192ED03ull, i) + 0.5) * 0x1p-32;
}
double normal(std::uint64_t stream, std::uint64_t i) { // Box-Muller
  return std::sqrt(-2.0 * std::log(uniform(2 * stream, i))) *
         std::cos(2 * std::numbers::pi * uniform(2 * stream + 1, i));
}

struct distribution {
  const char* name;
  const char* description;
  double (*sample)(std::uint64_t i);
};

const std::array<distribution, 4> distributions{{
    {"Gaussian", "N(0, 1)", [](std::uint64_t i) { return normal(0, i); }},
    {"Laplace", "unit variance, b = 1/sqrt(2)",
     [](std::uint64_t i) {
       const double u = uniform(10, i) - 0.5;
       return -std::copysign(std::numbers::sqrt2 / 2, u) * std::log(1 - 2 * std::fabs(u));
     }},
    {"Student-t(3)", "3 degrees of freedom",
     [](std::uint64_t i) {
       const double a = normal(21, i), b = normal(22, i), c = normal(23, i);
       return normal(20, i) / std::sqrt((a * a + b * b + c * c) / 3);
     }},
    {"Outliers", "N(0, 1) with 1 entry in 256 replaced by +-U(10, 20)",
     [](std::uint64_t i) {
       const double z = normal(30, i);
       return uniform(31, i) < 1.0 / 256 ? std::copysign(10 + 10 * uniform(32, i), z) : z;
     }},
}};

template <lowbit::scheme S>
struct entry {
  const char* label;  // the C++ spelling
  const char* family; // colour in the chart
};

using namespace lowbit;
const std::tuple schemes{
    entry<mxfp8_e4m3>{"mxfp8_e4m3", "MX float"},
    entry<mxfp8_e5m2>{"mxfp8_e5m2", "MX float"},
    entry<mxfp6_e3m2>{"mxfp6_e3m2", "MX float"},
    entry<mxfp6_e2m3>{"mxfp6_e2m3", "MX float"},
    entry<mxfp4>{"mxfp4", "MX float"},
    entry<mxint8>{"mxint8", "MXINT8"},
    entry<nvfp4>{"nvfp4", "NVFP4"},
    entry<int8_group<128>>{"int8_group<128>", "INT symmetric"},
    entry<int4_group<128>>{"int4_group<128>", "INT symmetric"},
    entry<int4_group<32>>{"int4_group<32>", "INT symmetric"},
    entry<int_sym<3, 128>>{"int_sym<3, 128>", "INT symmetric"},
    entry<int_sym<2, 128>>{"int_sym<2, 128>", "INT symmetric"},
    entry<int_asym<4, 128>>{"int_asym<4, 128>", "INT + zero point"},
    entry<int_asym<3, 128>>{"int_asym<3, 128>", "INT + zero point"},
    entry<int_asym<2, 128>>{"int_asym<2, 128>", "INT + zero point"},
    entry<nf4_scheme<64>>{"nf4_scheme<64>", "NF4"},
    entry<nf4_dq>{"nf4_dq", "NF4"},
    entry<nf4_dq_bnb>{"nf4_dq_bnb", "NF4"},
    entry<iq4_nl>{"iq4_nl", "IQ4_NL"},
    entry<ternary_absmean>{"ternary_absmean", "ternary"},
    entry<ternary_absmean_base3>{"ternary_absmean_base3", "ternary"},
};
constexpr std::size_t scheme_count = std::tuple_size_v<decltype(schemes)>;

constexpr std::uint64_t rotation_seed = 1;
const std::tuple policies{pipeline{rtn_absmax{}}, pipeline{rtn_mse{}},
                          pipeline{hadamard{.seed = rotation_seed}, rtn_absmax{}},
                          pipeline{hadamard{.seed = rotation_seed}, rtn_mse{}}};
constexpr std::size_t policy_count = std::tuple_size_v<decltype(policies)>;
const std::array<std::string, policy_count> policy_names =
    std::apply([](const auto&... p) { return std::array<std::string, policy_count>{p.name()...}; }, policies);

struct result {
  std::size_t dist;
  std::string scheme, layout, family;
  double bits;
  std::array<double, policy_count> sqnr;
};

// SQNR (dB) of W against its reconstruction: dequantized, then un-rotated where the policy rotated.
template <scheme S, class Policy>
double weight_sqnr(const Policy& policy, const std::vector<float>& w, std::size_t rows, std::size_t cols) {
  const quantized_linear<S> layer = policy.template quantize<S>(w, rows, cols);
  std::vector<float> back = dequantize(layer.weight);
  const auto& steps = layer.input.steps();
  for (auto s = steps.rbegin(); s != steps.rend(); ++s)
    if (s->rotate) s->rotate->apply_inverse_rows(back, rows);
  return measure_error(w, back).sqnr_db;
}

std::vector<result> measure(std::size_t rows, std::size_t cols) {
  std::vector<result> out;
  std::vector<float> w(rows * cols);
  for (std::size_t d = 0; d < distributions.size(); ++d) {
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(distributions[d].sample(i));
    const auto one = [&]<class S>(const entry<S>& e) {
      result r{d, e.label, scheme_name<S>(), e.family, S::bits_per_weight(rows, cols), {}};
      std::size_t p = 0;
      std::apply([&](const auto&... policy) { ((r.sqnr[p++] = weight_sqnr<S>(policy, w, rows, cols)), ...); },
                 policies);
      out.push_back(std::move(r));
    };
    std::apply([&](const auto&... e) { (one(e), ...); }, schemes);
    std::cerr << "lowbit-atlas: " << distributions[d].name << " done\n";
  }
  return out;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else if (c == '"')
      o += "&quot;";
    else
      o += c;
  }
  return o;
}

void write_csv(const std::filesystem::path& file, const std::vector<result>& results) {
  std::ofstream f(file);
  f << "distribution,scheme,policy,bits_per_weight,sqnr_db\n";
  for (const result& r : results)
    for (std::size_t p = 0; p < policy_count; ++p)
      f << distributions[r.dist].name << ",\"" << r.scheme << "\"," << policy_names[p] << ',' << fixed(r.bits, 4) << ','
        << fixed(r.sqnr[p], 3) << '\n';
}

void write_markdown(const std::filesystem::path& file, const std::vector<result>& results, std::size_t rows,
                    std::size_t cols) {
  std::ofstream f(file);
  f << "# lowbit format atlas\n\n"
    << "Weight SQNR, 10 log10(|W|^2 / |W - W'|^2) in dB, of every named scheme on " << rows << " x " << cols
    << " matrices of four distributions, under four round-to-nearest policies. W' is the dequantized matrix, "
    << "rotated back where the policy rotated. Bits per weight count codes, scales, zero points and tensor scales "
    << "of this matrix size. Generated by `lowbit-atlas --rows " << rows << " --cols " << cols << "` (lowbit "
    << LOWBIT_VERSION_MAJOR << '.' << LOWBIT_VERSION_MINOR << '.' << LOWBIT_VERSION_PATCH
    << "); the same numbers, one row per distribution x scheme x policy, are in `atlas.csv`.\n\n"
    << "![SQNR against bits per weight](atlas.svg)\n\n"
    << "- `rtn/absmax`: `rtn<absmax_search>`, each scheme's own scale rule.\n"
    << "- `rtn/mse`: `rtn<mse_search>`, the clipping ratio of least squared error per block.\n"
    << "- `hadamard + ...`: `pipeline{hadamard{.seed = " << rotation_seed
    << "}, ...}`, a randomized Walsh-Hadamard rotation of the rows first.\n\n"
    << "The best policy of each row is in bold.\n";
  for (std::size_t d = 0; d < distributions.size(); ++d) {
    f << "\n## " << distributions[d].name << "\n\n" << distributions[d].description << ".\n\n";
    f << "| scheme | stored as | bits/weight |";
    for (const std::string& p : policy_names) f << ' ' << p << " |";
    f << "\n|---|---|---:|";
    for (std::size_t p = 0; p < policy_count; ++p) f << "---:|";
    f << '\n';
    for (const result& r : results) {
      if (r.dist != d) continue;
      const auto best = std::max_element(r.sqnr.begin(), r.sqnr.end()) - r.sqnr.begin();
      f << "| `" << r.scheme << "` | " << r.layout << " | " << fixed(r.bits, 3) << " |";
      for (std::size_t p = 0; p < policy_count; ++p)
        f << ' ' << (static_cast<std::ptrdiff_t>(p) == best ? "**" + fixed(r.sqnr[p], 2) + "**" : fixed(r.sqnr[p], 2))
          << " |";
      f << '\n';
    }
  }
}

// The chart: a 2 x 2 grid of panels (one per distribution) on shared axes. Each scheme is a
// vertical stroke through its four policies' points, labelled at its best one; circles are
// absmax, diamonds MSE search; hollow markers without rotation, filled with Hadamard.
class svg_chart {
public:
  static constexpr double width = 1200, panel_w = 580, panel_h = 480, top = 110, left = 20;
  static constexpr double plot_l = 55, plot_r = 120, plot_t = 30, plot_b = 45; // margins inside a panel
  static constexpr double x_min = 1, x_max = 9, font = 11;

  svg_chart(double y_min, double y_max) : y_min_(y_min), y_max_(y_max) {}

  std::string render(const std::vector<result>& results, std::size_t rows, std::size_t cols) {
    const double height = top + 2 * panel_h + 40;
    out_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
         << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\" font-size=\"" << font
         << "\">\n";
    out_ << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    text(width / 2, 30, "lowbit format atlas: weight SQNR against bits per weight", "middle", 18);
    text(width / 2, 52,
         std::to_string(rows) + " x " + std::to_string(cols) +
             " matrices, every named scheme, round to nearest with four scale policies",
         "middle", 12);
    legend();
    for (std::size_t d = 0; d < distributions.size(); ++d)
      panel(d, results, left + static_cast<double>(d % 2) * (panel_w + 20), top + static_cast<double>(d / 2) * panel_h);
    out_ << "</svg>\n";
    return out_.str();
  }

private:
  struct box {
    double x0, y0, x1, y1;
    bool overlaps(const box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
    bool inside(const box& o) const { return x0 >= o.x0 && x1 <= o.x1 && y0 >= o.y0 && y1 <= o.y1; }
  };
  struct label {
    double px, py; // the point it names
    std::string text, colour;
    double x = 0, y = 0; // where the text goes (left end, baseline)
    box bounds() const { return {x - 1, y - 10, x + 6.0 * static_cast<double>(text.size()) + 1, y + 3}; }
  };

  static const char* colour(const std::string& family) {
    static const std::array<std::pair<const char*, const char*>, 8> table{{{"MX float", "#1b6ac9"},
                                                                           {"MXINT8", "#6a3d9a"},
                                                                           {"NVFP4", "#2e9d3a"},
                                                                           {"INT symmetric", "#d1495b"},
                                                                           {"INT + zero point", "#e8871e"},
                                                                           {"NF4", "#0f9aa8"},
                                                                           {"IQ4_NL", "#b5338a"},
                                                                           {"ternary", "#6b6b6b"}}};
    for (const auto& [name, c] : table)
      if (family == name) return c;
    return "black";
  }

  void text(double x, double y, const std::string& s, const char* anchor = "start", double size = font,
            const std::string& extra = "") {
    out_ << "<text x=\"" << fixed(x, 1) << "\" y=\"" << fixed(y, 1) << "\" text-anchor=\"" << anchor
         << "\" font-size=\"" << size << "\"" << extra << '>' << xml_escape(s) << "</text>\n";
  }
  void line(double x1, double y1, double x2, double y2, const char* stroke, double w = 1) {
    out_ << "<line x1=\"" << fixed(x1, 1) << "\" y1=\"" << fixed(y1, 1) << "\" x2=\"" << fixed(x2, 1) << "\" y2=\""
         << fixed(y2, 1) << "\" stroke=\"" << stroke << "\" stroke-width=\"" << w << "\"/>\n";
  }
  // Policy p: bit 0 = MSE search (diamond, else circle), bit 1 = Hadamard (filled, else hollow).
  // Data points carry class="pt" (the test counts them); legend samples do not.
  void marker(double x, double y, std::size_t p, const char* c, const std::string& title, bool data = true) {
    const std::string fill = p & 2 ? c : "white";
    if (p & 1)
      out_ << "<path" << (data ? " class=\"pt\"" : "") << " d=\"M" << fixed(x, 1) << ' ' << fixed(y - 4.5, 1)
           << "l4.5 4.5l-4.5 4.5l-4.5 "
           << "-4.5z\"";
    else
      out_ << "<circle" << (data ? " class=\"pt\"" : "") << " cx=\"" << fixed(x, 1) << "\" cy=\"" << fixed(y, 1)
           << "\" r=\"3.5\"";
    out_ << " fill=\"" << fill << "\" stroke=\"" << c << "\" stroke-width=\"1.5\"><title>" << xml_escape(title)
         << "</title>" << (p & 1 ? "</path>\n" : "</circle>\n");
  }

  void legend() {
    double x = left + 10;
    const double y = 80;
    for (std::size_t p = 0; p < policy_count; ++p) {
      marker(x, y - 4, p, "#333333", policy_names[p], false);
      text(x + 9, y, policy_names[p]);
      x += 28 + 6.2 * static_cast<double>(policy_names[p].size());
    }
    x += 20;
    for (const char* f : {"MX float", "MXINT8", "NVFP4", "INT symmetric", "INT + zero point", "NF4", "ternary"}) {
      out_ << "<rect x=\"" << fixed(x, 1) << "\" y=\"" << y - 9 << "\" width=\"10\" height=\"10\" fill=\"" << colour(f)
           << "\"/>\n";
      text(x + 14, y, f);
      x += 30 + 6.2 * static_cast<double>(std::string(f).size());
    }
  }

  void panel(std::size_t d, const std::vector<result>& results, double ox, double oy) {
    const double l = ox + plot_l, r = ox + panel_w - plot_r, t = oy + plot_t, b = oy + panel_h - plot_b;
    const auto px = [&](double bits) { return l + (bits - x_min) / (x_max - x_min) * (r - l); };
    const auto py = [&](double db) { return b - (db - y_min_) / (y_max_ - y_min_) * (b - t); };
    out_ << "<g id=\"panel-" << d << "\">\n";
    text((l + r) / 2, oy + 18, std::string(distributions[d].name) + ": " + distributions[d].description, "middle", 13);
    for (double v = x_min; v <= x_max; v += 1) {
      line(px(v), t, px(v), b, "#e4e4e4");
      text(px(v), b + 15, fixed(v, 0), "middle");
    }
    const double step = y_max_ - y_min_ > 60 ? 10 : 5;
    for (double v = y_min_; v <= y_max_ + 1e-9; v += step) {
      line(l, py(v), r, py(v), "#e4e4e4");
      text(l - 6, py(v) + 4, fixed(v, 0), "end");
    }
    line(l, b, r, b, "#333333");
    line(l, t, l, b, "#333333");
    text((l + r) / 2, b + 34, "bits per weight", "middle");
    text(ox + 14, (t + b) / 2, "SQNR (dB)", "middle", font,
         " transform=\"rotate(-90 " + fixed(ox + 14, 1) + ' ' + fixed((t + b) / 2, 1) + ")\"");

    std::vector<label> labels;
    std::vector<box> taken; // markers and strokes, which labels must not cover
    for (const result& res : results) {
      if (res.dist != d) continue;
      const char* c = colour(res.family);
      const double lo = *std::min_element(res.sqnr.begin(), res.sqnr.end());
      const double hi = *std::max_element(res.sqnr.begin(), res.sqnr.end());
      const double x = px(res.bits);
      line(x, py(lo), x, py(hi), c, 1.5);
      taken.push_back({x - 1.5, py(hi), x + 1.5, py(lo)});
      for (std::size_t p = 0; p < policy_count; ++p) {
        marker(x, py(res.sqnr[p]), p, c,
               res.scheme + ", " + policy_names[p] + ": " + fixed(res.bits, 3) + " bits, " + fixed(res.sqnr[p], 2) +
                   " dB");
        taken.push_back({x - 5, py(res.sqnr[p]) - 5, x + 5, py(res.sqnr[p]) + 5});
      }
      // Schemes that land on the same point (the same codes in another byte order) share a label.
      const auto same = std::find_if(labels.begin(), labels.end(),
                                     [&](const label& o) { return o.px == x && std::fabs(o.py - py(hi)) < 0.5; });
      if (same != labels.end())
        same->text += " = " + res.scheme;
      else
        labels.push_back({x, py(hi), res.scheme, c});
    }
    place(labels, taken, {l, t, ox + panel_w, b});
    for (const label& lb : labels) {
      if (lb.x > lb.px + 8 || std::fabs(lb.y - 4 - lb.py) > 2)
        line(lb.px + 5, lb.py, lb.x - 2, lb.y - 4, "#9a9a9a", 0.75);
      text(lb.x, lb.y, lb.text, "start", 10, std::string(" fill=\"") + lb.colour + "\"");
    }
    out_ << "</g>\n";
  }

  // Greedy label placement, from the top label down: each takes the free spot (covering no marker,
  // stroke or earlier label, inside the area) nearest to the right of its point, where moving
  // right costs half as much as moving up or down. A label with no free spot stays beside its point.
  static void place(std::vector<label>& labels, std::vector<box> taken, const box& area) {
    std::sort(labels.begin(), labels.end(), [](const label& a, const label& b) { return a.py < b.py; });
    for (label& lb : labels) {
      double best = std::numeric_limits<double>::infinity(), best_x = lb.px + 7, best_y = lb.py + 4;
      for (double dx = 0; dx <= 150; dx += 5)
        for (double dy = -60; dy <= 60; dy += 1) {
          const double cost = 0.5 * dx + std::fabs(dy);
          if (cost >= best) continue;
          lb.x = lb.px + 7 + dx;
          lb.y = lb.py + 4 + dy;
          const box bb = lb.bounds();
          if (!bb.inside(area) || std::any_of(taken.begin(), taken.end(), [&](const box& o) { return bb.overlaps(o); }))
            continue;
          best = cost;
          best_x = lb.x;
          best_y = lb.y;
        }
      lb.x = best_x;
      lb.y = best_y;
      taken.push_back(lb.bounds());
    }
  }

  double y_min_, y_max_;
  std::ostringstream out_;
};

void write_svg(const std::filesystem::path& file, const std::vector<result>& results, std::size_t rows,
               std::size_t cols) {
  double lo = 0, hi = 10;
  for (const result& r : results)
    for (double v : r.sqnr) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  svg_chart chart(std::floor(lo / 10) * 10, std::ceil(hi / 10) * 10);
  std::ofstream(file) << chart.render(results, rows, cols);
}

int usage(const char* why) {
  std::cerr << "lowbit-atlas: " << why << "\nusage: lowbit-atlas [--out DIR] [--rows R] [--cols C]\n"
            << "  writes DIR/atlas.svg, DIR/atlas.md and DIR/atlas.csv (defaults: DIR = ., R = 512, C = 1024;\n"
            << "  C must be a multiple of 128)\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::filesystem::path out = ".";
  std::size_t rows = 512, cols = 1024;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") return usage("the format atlas: SQNR of every scheme and policy");
      if (i + 1 >= argc) return usage(("missing value after " + arg).c_str());
      const std::string value = argv[++i];
      if (arg == "--out")
        out = value;
      else if (arg == "--rows")
        rows = std::stoul(value);
      else if (arg == "--cols")
        cols = std::stoul(value);
      else
        return usage(("unknown option " + arg).c_str());
    }
    if (rows == 0 || cols == 0 || cols % 128) return usage("rows must be positive and cols a multiple of 128");
    std::filesystem::create_directories(out);
    const std::vector<result> results = measure(rows, cols);
    write_csv(out / "atlas.csv", results);
    write_markdown(out / "atlas.md", results, rows, cols);
    write_svg(out / "atlas.svg", results, rows, cols);
    std::cout << "lowbit-atlas: " << results.size() * policy_count << " points (" << scheme_count << " schemes x "
              << distributions.size() << " distributions x " << policy_count << " policies) written to "
              << (out / "atlas.{svg,md,csv}").string() << '\n';
  } catch (const std::exception& e) {
    std::cerr << "lowbit-atlas: " << e.what() << '\n';
    return 1;
  }
}

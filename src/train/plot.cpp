#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

namespace nl {

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string escape_xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks.
double nice_step(double range, int count) {
  if (!(range > 0)) return 1.0;
  const double raw = range / count;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / p;
  return (m < 1.5 ? 1.0 : m < 3.5 ? 2.0 : m < 7.5 ? 5.0 : 10.0) * p;
}

struct Series {
  std::string label, colour;
  bool dashed;
  std::function<double(const EpochRecord&)> value;
  bool validation;
};

struct Panel {
  double x, y, w, h;  // plot area in SVG units
};

std::string panel_svg(const Panel& p, const std::string& name, const std::vector<EpochRecord>& hist,
                      const std::vector<Series>& series, double y_min, double y_max,
                      const char* tick_format, bool legend_at_bottom) {
  std::string s;
  const double epochs = static_cast<double>(std::max<size_t>(hist.size(), 1));
  auto px = [&](double epoch) { return p.x + p.w * (epochs <= 1 ? 0.5 : (epoch - 1) / (epochs - 1)); };
  auto py = [&](double v) { return p.y + p.h * (1.0 - (v - y_min) / (y_max - y_min)); };
  s += "<rect x='" + fmt("%.1f", p.x) + "' y='" + fmt("%.1f", p.y) + "' width='" +
       fmt("%.1f", p.w) + "' height='" + fmt("%.1f", p.h) +
       "' fill='white' stroke='#888'/>\n";
  s += "<text x='" + fmt("%.1f", p.x + p.w / 2) + "' y='" + fmt("%.1f", p.y - 10) +
       "' text-anchor='middle' font-weight='bold'>" + escape_xml(name) + "</text>\n";
  // y ticks and grid
  const double step = nice_step(y_max - y_min, 5);
  for (double v = std::ceil(y_min / step) * step; v <= y_max + step * 1e-6; v += step) {
    const double y = py(v);
    s += "<line x1='" + fmt("%.1f", p.x) + "' x2='" + fmt("%.1f", p.x + p.w) + "' y1='" +
         fmt("%.1f", y) + "' y2='" + fmt("%.1f", y) + "' stroke='#eee'/>\n";
    s += "<text x='" + fmt("%.1f", p.x - 6) + "' y='" + fmt("%.1f", y + 4) +
         "' text-anchor='end'>" + fmt(tick_format, v) + "</text>\n";
  }
  // x ticks
  const double xstep = std::max(1.0, nice_step(epochs - 1, 6));
  for (double e = 1; e <= epochs + 1e-9; e += xstep) {
    s += "<text x='" + fmt("%.1f", px(e)) + "' y='" + fmt("%.1f", p.y + p.h + 16) +
         "' text-anchor='middle'>" + fmt("%.0f", e) + "</text>\n";
  }
  s += "<text x='" + fmt("%.1f", p.x + p.w / 2) + "' y='" + fmt("%.1f", p.y + p.h + 34) +
       "' text-anchor='middle'>epoch</text>\n";
  // curves
  for (const Series& se : series) {
    std::string points;
    for (const EpochRecord& r : hist) {
      if (se.validation && !r.has_validation) continue;
      const double v = std::clamp(se.value(r), y_min, y_max);
      points += fmt("%.1f", px(static_cast<double>(r.epoch))) + "," + fmt("%.1f", py(v)) + " ";
    }
    if (points.empty()) continue;
    s += "<polyline fill='none' stroke='" + se.colour + "' stroke-width='2'" +
         (se.dashed ? " stroke-dasharray='6,4'" : "") + " points='" + points + "'/>\n";
  }
  // the best epoch: the last one marked best (each mark means "best so far")
  const EpochRecord* best = nullptr;
  for (const EpochRecord& r : hist)
    if (r.best) best = &r;
  if (best) {
    const double x = px(static_cast<double>(best->epoch));
    s += "<line x1='" + fmt("%.1f", x) + "' x2='" + fmt("%.1f", x) + "' y1='" + fmt("%.1f", p.y) +
         "' y2='" + fmt("%.1f", p.y + p.h) + "' stroke='#2ca02c' stroke-dasharray='2,3'/>\n";
    s += "<text x='" + fmt("%.1f", x + 3) + "' y='" + fmt("%.1f", p.y + p.h - 4) +
         "' fill='#2ca02c'>best</text>\n";
  }
  // legend, on a white box in the corner the curves leave free
  const double box_h = 16.0 * series.size() + 6;
  const double box_y = legend_at_bottom ? p.y + p.h - box_h - 18 : p.y + 4;
  s += "<rect x='" + fmt("%.1f", p.x + p.w - 150) + "' y='" + fmt("%.1f", box_y) +
       "' width='146' height='" + fmt("%.1f", box_h) + "' fill='white' fill-opacity='0.85' stroke='#ccc'/>\n";
  double ly = box_y + 15;
  for (const Series& se : series) {
    s += "<line x1='" + fmt("%.1f", p.x + p.w - 142) + "' x2='" + fmt("%.1f", p.x + p.w - 117) +
         "' y1='" + fmt("%.1f", ly - 4) + "' y2='" + fmt("%.1f", ly - 4) + "' stroke='" + se.colour +
         "' stroke-width='2'" + (se.dashed ? " stroke-dasharray='6,4'" : "") + "/>\n";
    s += "<text x='" + fmt("%.1f", p.x + p.w - 112) + "' y='" + fmt("%.1f", ly) + "'>" +
         escape_xml(se.label) + "</text>\n";
    ly += 16;
  }
  return s;
}

}  // namespace

std::string training_curves_svg(const std::vector<EpochRecord>& history, const std::string& title) {
  const double width = 900, height = 380;
  std::string s = "<?xml version='1.0' encoding='UTF-8'?>\n"
                  "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='380' "
                  "viewBox='0 0 900 380' font-family='sans-serif' font-size='12'>\n"
                  "<rect width='" + fmt("%.0f", width) + "' height='" + fmt("%.0f", height) +
                  "' fill='#fafafa'/>\n";
  s += "<text x='450' y='22' text-anchor='middle' font-size='15'>" + escape_xml(title) + "</text>\n";

  double loss_max = 0.0;
  for (const EpochRecord& r : history) {
    if (std::isfinite(r.train_loss)) loss_max = std::max(loss_max, r.train_loss);
    if (r.has_validation && std::isfinite(r.val_loss)) loss_max = std::max(loss_max, r.val_loss);
  }
  if (!(loss_max > 0)) loss_max = 1.0;
  loss_max = std::ceil(loss_max / nice_step(loss_max, 5)) * nice_step(loss_max, 5);

  double acc_min = 1.0;
  for (const EpochRecord& r : history) {
    acc_min = std::min(acc_min, r.train_accuracy);
    if (r.has_validation) acc_min = std::min(acc_min, r.val_accuracy);
  }
  acc_min = std::max(0.0, std::floor(acc_min * 10.0) / 10.0);
  if (acc_min >= 1.0) acc_min = 0.9;

  const std::vector<Series> loss_series = {
      {"train loss", "#1f77b4", false, [](const EpochRecord& r) { return r.train_loss; }, false},
      {"validation loss", "#d62728", true, [](const EpochRecord& r) { return r.val_loss; }, true}};
  const std::vector<Series> acc_series = {
      {"train accuracy", "#1f77b4", false, [](const EpochRecord& r) { return r.train_accuracy; }, false},
      {"validation accuracy", "#d62728", true, [](const EpochRecord& r) { return r.val_accuracy; }, true}};
  s += panel_svg({60, 60, 360, 260}, "loss", history, loss_series, 0.0, loss_max, "%.2f", false);
  s += panel_svg({510, 60, 360, 260}, "accuracy", history, acc_series, acc_min, 1.0, "%.2f", true);
  s += "</svg>\n";
  return s;
}

std::string reliability_diagram_svg(const std::vector<CalibrationFigures>& panels, const std::string& title) {
  const double pw = 320, ph = 260, top = 70, left = 60, gap = 90;
  const double width = left + panels.size() * (pw + gap);
  std::string s = "<svg xmlns='http://www.w3.org/2000/svg' width='" + fmt("%.0f", width) + "' height='400' viewBox='0 0 " +
                  fmt("%.0f", width) + " 400' font-family='sans-serif' font-size='12'>\n"
                  "<rect width='100%' height='100%' fill='white'/>\n";
  s += "<text x='" + fmt("%.1f", width / 2) + "' y='22' text-anchor='middle' font-size='15'>" + escape_xml(title) + "</text>\n";
  for (size_t k = 0; k < panels.size(); ++k) {
    const CalibrationFigures& f = panels[k];
    const double x0 = left + k * (pw + gap), y0 = top;
    auto px = [&](double v) { return x0 + v * pw; };
    auto py = [&](double v) { return y0 + (1.0 - v) * ph; };
    s += "<text x='" + fmt("%.1f", x0 + pw / 2) + "' y='" + fmt("%.1f", y0 - 24) +
         "' text-anchor='middle' font-weight='bold'>" + escape_xml("temperature " + fmt("%.3f", f.temperature)) + "</text>\n";
    s += "<text x='" + fmt("%.1f", x0 + pw / 2) + "' y='" + fmt("%.1f", y0 - 8) + "' text-anchor='middle'>" +
         escape_xml("ECE " + fmt("%.2f", 100.0 * f.ece) + "%, NLL " + fmt("%.4f", f.nll) + ", " +
                    std::to_string(f.images) + " images") + "</text>\n";
    s += "<rect x='" + fmt("%.1f", x0) + "' y='" + fmt("%.1f", y0) + "' width='" + fmt("%.1f", pw) + "' height='" +
         fmt("%.1f", ph) + "' fill='none' stroke='#444'/>\n";
    for (int t = 0; t <= 5; ++t) {
      const double v = t / 5.0;
      s += "<text x='" + fmt("%.1f", x0 - 6) + "' y='" + fmt("%.1f", py(v) + 4) + "' text-anchor='end'>" + fmt("%.1f", v) + "</text>\n";
      s += "<text x='" + fmt("%.1f", px(v)) + "' y='" + fmt("%.1f", y0 + ph + 16) + "' text-anchor='middle'>" + fmt("%.1f", v) + "</text>\n";
    }
    s += "<text x='" + fmt("%.1f", x0 + pw / 2) + "' y='" + fmt("%.1f", y0 + ph + 34) +
         "' text-anchor='middle'>top probability (confidence)</text>\n";
    s += "<text x='" + fmt("%.1f", x0 - 40) + "' y='" + fmt("%.1f", y0 + ph / 2) + "' text-anchor='middle' transform='rotate(-90 " +
         fmt("%.1f", x0 - 40) + " " + fmt("%.1f", y0 + ph / 2) + ")'>accuracy</text>\n";
    for (const ReliabilityBin& b : f.bins) {
      if (b.count == 0) continue;
      const double bx = px(b.low) + 1, bw = (b.high - b.low) * pw - 2;
      s += "<rect x='" + fmt("%.1f", bx) + "' y='" + fmt("%.1f", py(b.accuracy)) + "' width='" + fmt("%.1f", bw) +
           "' height='" + fmt("%.1f", b.accuracy * ph) + "' fill='#4a7bd0' fill-opacity='0.75'><title>" +
           escape_xml(fmt("%.3f", b.low) + "-" + fmt("%.3f", b.high) + ": " + std::to_string(b.count) + " images, accuracy " +
                      fmt("%.4f", b.accuracy) + ", mean confidence " + fmt("%.4f", b.confidence)) + "</title></rect>\n";
      s += "<line x1='" + fmt("%.1f", bx) + "' x2='" + fmt("%.1f", bx + bw) + "' y1='" + fmt("%.1f", py(b.confidence)) +
           "' y2='" + fmt("%.1f", py(b.confidence)) + "' stroke='#d04a4a' stroke-width='2'/>\n";
    }
    s += "<line x1='" + fmt("%.1f", px(0)) + "' y1='" + fmt("%.1f", py(0)) + "' x2='" + fmt("%.1f", px(1)) + "' y2='" +
         fmt("%.1f", py(1)) + "' stroke='#888' stroke-dasharray='4 3'/>\n";
  }
  s += "<text x='" + fmt("%.1f", left) + "' y='390'>bars: accuracy per bin; red: mean confidence in the bin; dashed: perfect calibration</text>\n";
  s += "</svg>\n";
  return s;
}

}  // namespace nl

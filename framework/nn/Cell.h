// Cell: the base of every network building block (MindSpore nn.Cell).
//
// A Cell owns named parameters (tensors that may require grad), named buffers (state that is saved
// but not trained, e.g. BatchNorm's moving_mean) and named child cells, all registered in the
// constructor. Names are validated: non-empty, no '.', unique within the cell. Hierarchical names
// join the path with '.', exactly as MindSpore and PyTorch spell them: "layer1.0.conv1.weight".
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor/Tensor.h"

namespace anvil::nn {

class Cell {
 public:
  virtual ~Cell() = default;
  Cell() = default;
  Cell(const Cell&) = delete;
  Cell& operator=(const Cell&) = delete;

  /// Forward pass of a single-input cell. Cells that are not single-input throw.
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// Class name for messages and summaries, e.g. "Dense".
  virtual std::string type_name() const = 0;
  /// Short description of the configuration, e.g. "in_channels=1, out_channels=6, kernel_size=5".
  virtual std::string extra_repr() const { return ""; }

  /// Every parameter of this cell and its descendants, depth-first in registration order, with
  /// hierarchical names (trainable or frozen).
  NamedTensors parameters_and_names() const;
  /// The parameters that require grad (what an optimizer updates).
  NamedTensors trainable_params() const;
  /// Every buffer (non-trained state) with hierarchical names.
  NamedTensors buffers_and_names() const;
  /// Parameters then buffers: everything a checkpoint of the network holds.
  NamedTensors state_dict() const;
  /// This cell ("" as name) and every descendant with hierarchical names, depth-first.
  std::vector<std::pair<std::string, Cell*>> cells_and_names();

  /// Switches this cell and all descendants between training and inference behaviour.
  void set_train(bool mode = true);
  bool training() const { return training_; }

  /// Converts every parameter and buffer to `dtype` in place (kF32 or kF64); handles held by layers
  /// see the change. Used to run gradient checks in float64.
  void to_dtype(DType dtype);

  /// Child by name (direct child only); throws listing the children when absent.
  Cell& child(const std::string& name) const;

  /// A text table of the network (Keras/torchinfo-style summary): one row per cell, depth-first in
  /// registration order, with its hierarchical path ("(root)" for this cell), type_name(), output shape
  /// and the number of parameter elements the cell registers itself (so the column sums to the total),
  /// then "Total params", "Trainable params", "Non-trainable params" (elements of
  /// parameters_and_names()) and "Buffers" (elements of buffers_and_names()).
  /// Without a sample the output-shape column holds "-".
  std::string summary() const;
  /// summary() with output shapes from one forward pass of `sample` (e.g. [1, C, H, W]), run without
  /// recording a graph and in inference mode (every cell's training flag is restored afterwards, so
  /// BatchNorm statistics and Dropout generators are untouched). How shapes are found, without
  /// changing any layer: the root's is its output; a child of a SequentialCell gets the output it
  /// produced there; a cell with parameters gets the output of the last op that read one of its own
  /// parameters or buffers (conv, dense, batch-norm: the layer's output, shape-wise also after an
  /// elementwise activation); a container gets the shape of its descendant that finished last.
  /// Parameterless cells called outside a SequentialCell (e.g. a ReLU cell inside a custom forward)
  /// show "-".
  /// Errors: those of forward(sample) (e.g. a wrong input shape), after the modes were restored.
  std::string summary(const Tensor& sample);
  const std::vector<std::pair<std::string, std::shared_ptr<Cell>>>& children() const { return children_; }

 protected:
  /// Registers a parameter; `requires_grad` false freezes it. Returns the stored tensor handle.
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  /// Registers a buffer (saved, never trained).
  Tensor register_buffer(const std::string& name, Tensor value);
  /// Registers a child cell and returns it.
  template <typename C>
  std::shared_ptr<C> register_cell(const std::string& name, std::shared_ptr<C> cell) {
    add_child(name, cell);
    return cell;
  }
  /// Called by set_train after training_ changed (layers with mode-dependent state override it).
  virtual void on_train_mode_changed() {}

 private:
  void check_new_name(const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Cell> cell);
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
  // The summary table; `shapes` maps cells to their output-shape text (absent: "-").
  std::string summary_table(const std::vector<std::pair<const Cell*, std::string>>& shapes) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Cell>>> children_;
  bool training_ = true;

 public:
  // ---- devices (issue 8) ----
  /// Moves every parameter and buffer (and any accumulated gradient) of this cell and its
  /// descendants to `device`, in place: handles held by layers and optimizers see the new storage
  /// (Tensor::set_data), autograd identity is kept. Returns *this. Throws anvil::Error "... Anvil was
  /// built without the CUDA backend" for a GPU in a CPU-only build.
  Cell& to(const Device& device);
  /// to(default_device()): the device chosen with anvil::set_context({.device_target = "GPU", ...}).
  Cell& to();
};

/// A cell whose forward runs its children in order (MindSpore nn.SequentialCell). Children are
/// named "0", "1", ... so parameters are "0.weight", "1.bias", ...
class SequentialCell : public Cell {
 public:
  SequentialCell() = default;
  explicit SequentialCell(std::vector<std::shared_ptr<Cell>> cells);
  /// Appends a cell named by its index.
  void append(std::shared_ptr<Cell> cell);
  std::size_t size() const { return children().size(); }
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "SequentialCell"; }
};

}  // namespace anvil::nn

"""What the families whose two maps are one kind of mat-vec share (block-circulant, row-balanced sparse).

Such a family runs its input map ``(n_in) -> 4H`` and its recurrent map ``(H) -> 4H`` with the same
kernel, each configured by one schedule object built for the layer's reuse factor. A schedule
(``hls_project.bc_lstm.CirculantSchedule``, ``hls_project.rbs_lstm.SparseSchedule``) has:

- ``at(shape, reuse_factor)``: the schedule of a map's structure (``models.circulant.BCShape``,
  ``models.row_balanced.RBShape``);
- ``terms_per_output``: the products summed into one output (the exact sum's type follows from it);
- ``layout(data)``: a weight, Keras shape, in the order the kernel reads it;
- ``template``: its C++ config struct, ``str.format`` of ``what``, ``index``, ``suffix``,
  ``weight_types``, ``mac_t``, the schedule (``schedule``) and its ``shape``;
- ``stages(what, in_bits, weight_bits, mac_bits)``: its ``hls_project.cost.Stage`` list.

The C++ calls ``nnet::<kernel_prefix>_map`` for both, with a reader of its input (the frame as it
streams in: the family's ``input_reader``; ``h``: ``nnet::array_reader``) and the map's weights in
the cell's order.
"""

from __future__ import annotations

from hls_project.lstm_cell import layout_folding
from hls_project.sizing import exact_cpp, map_input_type, product_sum_type

PARTS = ("input_map", "recurrent_map")


class ScheduledMaps:
    """Mixin of an ``LSTMFamilyLayer``: the family sets ``schedule_class``, ``kernel_prefix`` and
    ``input_reader``."""

    schedule_class = None
    kernel_prefix = ""
    input_reader = ""  # the C++ reader of the frame, str.format of index

    def input_map_folding_stages(self) -> list:
        return ["input map"]

    def schedules(self, folding=None) -> tuple:
        """The input map's and the recurrent map's schedules at ``folding`` (default: the layer's)."""
        folding = folding or self.folding()
        cell = self.cell
        return (
            self.schedule_class.at(cell.decomposition, folding["input map"]),
            self.schedule_class.at(cell.recurrent_shape, folding["recurrent map"]),
        )

    def weight_layout(self, name, data):
        part = 0 if name in self.get_attr("input_map_weight_names") else 1
        return self.schedules(layout_folding(self))[part].layout(data)

    def mac_types(self) -> tuple:
        """The exact sums of the input map (frame values times kernel values) and of the recurrent map."""
        types = self.lstm_types
        inputs = self.schedules()[0]
        return product_sum_type(
            inputs.terms_per_output, map_input_type(types, False), types.kernel
        ), self.recurrent_map_type()

    def recurrent_map_type(self):
        types = self.lstm_types
        return product_sum_type(self.schedules()[1].terms_per_output, types.state, types.recurrent)

    def input_map_configs(self):
        text = ""
        for part, what, suffix, schedule, mac in zip(
            PARTS, ("input map", "recurrent map"), "xh", self.schedules(), self.mac_types(), strict=True
        ):
            weight_types = [self.get_weights(name).type.name for name in self.get_attr(f"{part}_weight_names")]
            text += schedule.template.format(
                what=what,
                index=self.index,
                suffix=suffix,
                weight_types=weight_types,
                mac_t=exact_cpp(mac),
                schedule=schedule,
                shape=schedule.shape,
            )
        return text

    dense_recurrent_map = False  # the recurrent map is the family's kernel too

    def input_map_body(self):
        weights = ", ".join(self.weight_vars("input_map"))
        reader = self.input_reader.format(index=self.index)
        return f"        nnet::{self.kernel_prefix}_map<config{self.index}_x, {reader}>(frame, h, zx, {weights});"

    def recurrent_map_body(self):
        weights = ", ".join(self.weight_vars("recurrent_map"))
        call = f"nnet::{self.kernel_prefix}_map<config{self.index}_h, nnet::array_reader<state_t>>"
        return f"        {call}(h, h, zh, {weights});"

    def input_map_stages(self):
        types = self.lstm_types
        return self.schedules()[0].stages("input map", types.input.width, types.kernel.width, self.mac_types()[0].width)

    def recurrent_map_stages(self):
        types = self.lstm_types
        return self.schedules()[1].stages(
            "recurrent map", types.state.width, types.recurrent.width, self.mac_types()[1].width
        )

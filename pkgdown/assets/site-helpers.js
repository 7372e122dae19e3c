/* What pkgdown.js (Bootstrap 5 template) calls besides jQuery and
   Bootstrap, written for lionr's offline site so that no script comes from
   a CDN: a table of contents for the "On this page" box, copy buttons on
   code blocks (through navigator.clipboard), and inert stand-ins for the
   navbar auto-hiding, search-term marking and search autocompletion, which
   this site does not use (its navbar has no search box). */
(function ($) {
  $.fn.headroom = function () { return this; };
  $.fn.autocomplete = function () { return this; };

  window.Mark = function () {};
  window.Mark.prototype.mark = function () {};

  /* Lists the headings in `$scope` that have an id (theirs or their
     section's) as links in `$nav`. */
  window.Toc = {
    init: function (options) {
      var $nav = options.$nav;
      if (!$nav || !$nav.length) return;
      var $list = $('<ul class="nav nav-pills flex-column"></ul>');
      options.$scope.each(function () {
        var id = this.id || $(this).closest('[id]').attr('id');
        if (!id) return;
        var $link = $('<a class="nav-link"></a>')
          .attr('href', '#' + id)
          .text($(this).clone().children('.anchor').remove().end().text().trim());
        $list.append($('<li class="nav-item"></li>').append($link));
      });
      if ($list.children().length) $nav.append($list);
    }
  };

  /* new ClipboardJS(selector, {text: fn}): clicking an element matching
     `selector` copies fn(element); .on('success' | 'error', handler). */
  function ClipboardJS(selector, options) {
    var handlers = { success: [], error: [] };
    this.on = function (event, handler) { handlers[event].push(handler); return this; };
    $(document).on('click', selector, function () {
      var trigger = this;
      var done = function (event) {
        return function () {
          handlers[event].forEach(function (h) {
            h({ trigger: trigger, clearSelection: function () {} });
          });
        };
      };
      navigator.clipboard.writeText(options.text(trigger))
        .then(done('success'), done('error'));
    });
  }
  ClipboardJS.isSupported = function () {
    return !!(navigator.clipboard && navigator.clipboard.writeText);
  };
  window.ClipboardJS = ClipboardJS;
})(window.jQuery);

"""Paging through big ordered querysets (the staff order list)."""

from django.core.paginator import Paginator
from django.db.models import QuerySet

# Up to this many pages of results are read whole, without LIMIT (see BigTablePaginator).
SMALL_RESULT_PAGES = 10


class BigTablePaginator(Paginator):
    """Django's Paginator with two changes for tables of a million rows; the pages are the same.

    - A page past the middle is read from the other end: the ordering reversed and a smaller
      OFFSET, the rows put back in order. The database walks every row it skips, so page
      15,000 of 20,000 costs what page 5,000 does, and the last page what the first does.
    - A small result (a search with a few matches) is read without LIMIT. With LIMIT 1 or 2
      PostgreSQL walks the ordering index hoping to meet a match early instead of using the
      search's own index: 1.3 s instead of a few milliseconds for one match in a million.

    The queryset's ordering must be total (end with a unique field, as ("-placed_at", "-id")
    does), or the two directions may disagree about ties."""

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        if not isinstance(self.object_list, QuerySet) or not self.object_list.ordered:
            return super().page(number)
        if self.count <= self.per_page * SMALL_RESULT_PAGES:
            return self._get_page(list(self.object_list)[bottom:top], number, self)
        rows_after = self.count - top
        if rows_after < bottom:
            rows = list(self.object_list.reverse()[rows_after : self.count - bottom])
            rows.reverse()
            return self._get_page(rows, number, self)
        return self._get_page(self.object_list[bottom:top], number, self)
